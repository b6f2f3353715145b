# Sourced by the campaign scripts (gpu_campaign.sh, gpu_i2a_campaign.sh) at the start of a lease: the output
# folder, the allocator setting, the git sha the lineages will record, the lease's clock and the device; and,
# with CAMPAIGN_PATHS set (the campaign's results and checkpoint folders), the warm machine's campaign state.
#
# Why the warm state: each call copies the caller's working tree over the machine's, so on back-to-back calls
# the tracked campaign files the previous call wrote (lineages, exported weights) are replaced by the caller's
# older copy while the ignored run folders (runs/) survive. The lineage then folds several calls into one
# lease (recorded.json keeps the frame counts right, but the per-lease record and curve points are lost:
# dSSM-VAE-s0/s1 on 2026-12-02). So each lease ends with save_warm_state (a copy under runs/warm-state/, with
# the hash of the tree it started from and of the tree it ended with), and the next call on the same machine
# puts that copy back when its tree is still the one the previous call started from (the caller unpacked
# nothing in between). A tree that is the previous call's end state (the caller unpacked the tar) needs
# nothing; any other tree is left as the caller sent it, with a warning.
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
[ -n "${SSMLIB_GIT_SHA:-}" ] || echo "warning: SSMLIB_GIT_SHA is not set: the lineage records this copy's git HEAD, which on a lent machine may be a stale snapshot"
# one saved state per set of campaign folders (a zoo call between two I2A calls keeps the I2A's); WARM_RESTORE=0
# sends a tree that must be used as sent (e.g. to throw a bad lease away)
WARM_STATE=${WARM_STATE:-runs/warm-state/$(printf '%s\n' "${CAMPAIGN_PATHS[@]:-none}" | sha256sum | cut -c1-12)}
present_paths() {  # the campaign's folders that exist (a new game has none yet), into the array PRESENT
  local p
  PRESENT=()
  for p in "${CAMPAIGN_PATHS[@]}"; do [ -e "$p" ] && PRESENT+=("$p"); done
  return 0
}
campaign_hash() {  # paths and contents of every file under the campaign's folders (lease logs aside)
  local present
  present_paths; present=("${PRESENT[@]}")
  { [ ${#present[@]} -eq 0 ] || find "${present[@]}" -type f -not -path '*/logs/*' -print0 | LC_ALL=C sort -z \
      | xargs -0r sha256sum; } | sha256sum | cut -c1-16
}
# REQUIRE_WARM=1: the caller may send the previous call's tree again without unpacking that call's files (so as to
# call again within the machine's 30 s idle release: a warm machine reuses its dataset and compiled graphs). Only
# the machine that ran that call holds its state: it accepts the tree that call started from (and restores its
# state) or the one it ended with (the caller unpacked); anything else ends the lease at once (exit 3) instead of
# training a stale state a second time (a branch that `unpack` refuses).
restore_warm_state() {
  local now=$CAMPAIGN_START_HASH  # the tree as sent, hashed once
  if [ "${REQUIRE_WARM:-0}" = 1 ]; then
    if [ "${WARM_RESTORE:-1}" != 1 ] || [ ! -f "$WARM_STATE/start.hash" ] || { [ "$now" != "$(cat "$WARM_STATE/start.hash")" ] && [ "$now" != "$(cat "$WARM_STATE/end.hash")" ]; }; then
      echo "REQUIRE_WARM=1 but this machine does not hold the previous call's state (a bare machine, another tree, or WARM_RESTORE=0): nothing trained; unpack the previous call's files (python -m ssmlib unpack --from DIR) and call again without REQUIRE_WARM"
      exit 3
    fi
  fi
  [ "${WARM_RESTORE:-1}" = 1 ] && [ -f "$WARM_STATE/start.hash" ] || return 0
  if [ "$now" = "$(cat "$WARM_STATE/start.hash")" ]; then
    rm -rf "${CAMPAIGN_PATHS[@]}"
    cp -a "$WARM_STATE/tree/." .
    WARM_RESTORED=1  # the caller's script may restore its own files of that call too (gpu_campaign.sh: the study)
    echo "warm machine: restored the previous call's campaign state (the tree sent is the one it started from)"
  elif [ "$now" = "$(cat "$WARM_STATE/end.hash")" ]; then
    echo "warm machine: the tree sent already holds the previous call's campaign state"
  else
    echo "warning: warm machine, but the tree sent is neither the previous call's start nor its end: kept as sent (a lineage may fold leases together)"
  fi
}
save_warm_state() {  # call at the end of the lease, before the tar
  rm -rf "$WARM_STATE.new"
  mkdir -p "$WARM_STATE.new/tree"
  local p
  for p in "${CAMPAIGN_PATHS[@]}"; do if [ -e "$p" ]; then cp -a --parents "$p" "$WARM_STATE.new/tree/"; fi; done
  echo "$CAMPAIGN_START_HASH" > "$WARM_STATE.new/start.hash"
  campaign_hash > "$WARM_STATE.new/end.hash"
  rm -rf "$WARM_STATE"
  mv "$WARM_STATE.new" "$WARM_STATE"
}
pack_campaign() {  # $1: the tar's name under $OUT. The device returns files of at most 16 MiB, and the zoo's tar
  # passed that on 2026-12-02 (13 runs' weights, 18 MB: that call's tar did not come back). So a tar over 15 MiB is
  # split into NAME.part-aa, -ab, ... (join with `cat NAME.part-* > NAME`); at most 8 files come back.
  # never fails the lease (its log must still come back), but says what went wrong
  local tarfile="$OUT/$1"
  present_paths
  tar -cf "$tarfile" "${PRESENT[@]}" || { echo "warning: tar of the campaign failed: $OUT/$1 is incomplete or missing"; return 0; }
  if [ "$(stat -c %s "$tarfile")" -gt $(( 15 * 1024 * 1024 )) ]; then
    if split -b 15M "$tarfile" "$tarfile.part-"; then
      rm "$tarfile"
      echo "$1 split into $(ls "$tarfile".part-* | wc -l) parts: cat $1.part-* > $1"
    else
      rm -f "$tarfile".part-*
      echo "warning: splitting $1 failed; it is over the device's 16 MiB per file and will not come back"
    fi
  fi
  [ "$(ls "$OUT" | wc -l)" -le 8 ] || echo "warning: $OUT holds more than the 8 files the device returns: $(ls "$OUT" | tr '\n' ' ')"
}
WARM_RESTORED=0  # set to 1 by restore_warm_state when it puts the previous call's state back
if [ -n "${CAMPAIGN_PATHS+x}" ]; then
  CAMPAIGN_START_HASH=$(campaign_hash)  # the tree as sent: the next call compares its own with this
  restore_warm_state
fi
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader 2>/dev/null || echo "no GPU: $(nproc) CPU cores"
