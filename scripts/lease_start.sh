# Sourced by the campaign scripts (gpu_campaign.sh, gpu_i2a_campaign.sh) at the start of a lease: the output
# folder, the allocator setting, the git sha the lineages will record, the lease's clock and the device.
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
[ -n "${SSMLIB_GIT_SHA:-}" ] || echo "warning: SSMLIB_GIT_SHA is not set: the lineage records this copy's git HEAD, which on a lent machine may be a stale snapshot"
t0=$(date +%s)
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv,noheader 2>/dev/null || echo "no GPU: $(nproc) CPU cores"
