"""What a GPU lease sends back, put in place: ``python -m ssmlib unpack --from DIR``.

A lease of ``scripts/gpu_campaign.sh`` returns, in the folder the device tool copies ``$OUT`` to:

* ``campaign.tar`` (or ``campaign.tar.part-aa``, ``-ab``, ... when it was over the device's file limit) holding
  ``results/model_zoo/<game>/campaign`` and ``checkpoints/campaign/<game>``, and ``lease.log`` (what the
  caller redirected there);
* with ``I2A=1``, also ``i2a/i2a_campaign.tar`` (or its parts) holding ``results/i2a/<game>/campaign`` and
  ``checkpoints/i2a_campaign/<game>``, and ``i2a.log`` (``scripts/gpu_i2a_campaign.sh`` called on its own
  returns ``i2a_campaign.tar`` and the caller's ``lease.log`` at the top). A run that finished in that lease has no state any
  more, so the I2A checkpoint folder is replaced, not merged (``scripts/gpu_i2a_campaign.sh`` says the same).

Every tar is read and every member checked (a plain file or folder under its campaign's two folders) before
anything in the repository changes, so a damaged or foreign tar is refused in one line with nothing written.
Each log is stored in its campaign's ``logs/`` as ``<UTC date>-<HHMM>-<device tag>.log.gz`` (gzip-compressed
since 2026-12-04; ``.log`` before), the time being the newest file in the tar (the device's clock when the lease
packed it).

With ``OPEN_LOOP=1`` the folder also holds ``open_loop_samples.json`` (the sample-count study, continuing
``results/open_loop_samples/<game>-campaign.json``, stored as ``.json.gz`` since 2026-12-04) and its
``open_loop_samples.log``: the file replaces the committed one when it continues it (the same configuration, every committed checkpoint kept with the same
bytes), and the log is stored as ``results/open_loop_samples/logs/<game>-campaign-<UTC time>-<device
tag>.log.gz``, the time being the newest checkpoint's scoring.

Every run's ``lineage.json`` in a tar must continue the committed one: the committed leases first, unchanged.
A call sent the tree of an earlier call that was not unpacked yet, on a machine no longer warm, continues the
same state a second time; its tar is a branch, refused here, and kept by hand under
``<results>/branches/<call>/`` with a README if it is worth keeping (2026-12-03).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import SsmlibError
from ..io import atomic_write_packed, drop_other_form, parse_time, read_packed, read_text, stored_path


@dataclass(frozen=True)
class LeaseTar:
    """One campaign's tar in a lease's returned folder."""

    name: str
    """The tar's path relative to the returned folder (its parts add ``.part-aa``, ...)."""
    log: str
    """The lease's log beside it, relative to the returned folder."""
    results: str
    """The campaign's results folder, ``{game}`` filled in (its ``logs/`` receives the log)."""
    checkpoints: str
    """The campaign's checkpoint folder, ``{game}`` filled in."""
    replace_checkpoints: bool
    """Delete the checkpoint folder before unpacking (the tar holds every open run's state, and only those)."""
    other_logs: tuple[str, ...] = ()
    """Other names the log may have come back under, tried in order when ``log`` is absent."""

    def log_in(self, folder: Path) -> Path:
        """The lease's log in ``folder``: ``log``, else the first of ``other_logs`` there, else ``log``'s path."""
        for name in (self.log, *self.other_logs):
            if (folder / name).is_file():
                return folder / name
        return folder / self.log


LEASE_TARS = (
    LeaseTar("campaign.tar", "lease.log", "results/model_zoo/{game}/campaign", "checkpoints/campaign/{game}", False),
    LeaseTar("i2a/i2a_campaign.tar", "i2a.log", "results/i2a/{game}/campaign", "checkpoints/i2a_campaign/{game}",
             True),
    # scripts/gpu_i2a_campaign.sh called on its own: its tar at the top, the caller's log beside it (named as in a
    # call with the zoo, i2a.log, on 2026-12-05 05:38)
    LeaseTar("i2a_campaign.tar", "lease.log", "results/i2a/{game}/campaign", "checkpoints/i2a_campaign/{game}", True,
             ("i2a.log",)),
)


STUDY_FILE, STUDY_LOG = "open_loop_samples.json", "open_loop_samples.log"
"""What ``OPEN_LOOP=1`` adds to a lease's folder (``scripts/gpu_campaign.sh``)."""


STUDY_ADVICE = (f" (to unpack the tars alone, copy the folder without {STUDY_FILE}, e.g. `cp -r DIR /tmp/lease && "
                f"rm /tmp/lease/{STUDY_FILE}`, and unpack the copy)")


def check_study(src: Path, committed: Path) -> tuple[bytes, list[str], str | None]:
    """The returned sample-count study: its bytes, the checkpoints it adds to the ``committed`` file, and the
    ``YYYY-MM-DD-HHMM`` of the newest of those scorings (None when it adds none). Refused in one line unless it
    continues the committed file (the same configuration; every committed checkpoint present with the same
    sha256)."""
    data = src.read_bytes()
    try:
        doc = json.loads(data)
        new, config = dict(doc["checkpoints"]), doc["config"]
        stored = stored_path(committed)  # compressed since 2026-12-04
        old = json.loads(read_text(stored)) if stored.exists() else {"config": config, "checkpoints": {}}
        lost = [n for n, c in old["checkpoints"].items() if new.get(n, {}).get("sha256") != c["sha256"]]
        added = [n for n in new if n not in old["checkpoints"]]
        times = [str(new[n]["provenance"]["time"]) for n in added]
        newest = max(times, default=None)
        when = newest and stamp(parse_time(newest))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise SsmlibError(f"{STUDY_FILE} or {committed.name}: not a sample-count study ({type(e).__name__}: {e}); "
                          f"nothing was unpacked{STUDY_ADVICE}") from None
    if old["config"] != config:
        raise SsmlibError(f"{STUDY_FILE} was scored with another configuration than {committed.name}: it does not "
                          f"continue it; nothing was unpacked{STUDY_ADVICE}")
    if lost:
        raise SsmlibError(f"{STUDY_FILE} lacks or changed committed checkpoints ({', '.join(lost)}): it does not "
                          f"continue {committed.name}; nothing was unpacked{STUDY_ADVICE}")
    return data, added, when


SKIP_ADVICE = (" (to unpack the other campaign's tar alone, copy the folder without this one, e.g. "
               "`cp -r DIR /tmp/lease && rm -r /tmp/lease/i2a`, and unpack the copy)")


def tar_parts(folder: Path, name: str) -> list[Path]:
    """The file(s) of tar ``name`` in ``folder``: the tar itself, else its parts in order, else none."""
    whole = folder / name
    if whole.is_file():
        return [whole]
    return sorted(whole.parent.glob(whole.name + ".part-*"))


def _joined(parts: list[Path], tmp: Path) -> Path:
    if len(parts) == 1:
        return parts[0]
    out = tmp / parts[0].name.split(".part-")[0]
    with open(out, "wb") as f:
        for p in parts:
            with open(p, "rb") as src:
                shutil.copyfileobj(src, f)
    return out


def check_members(tar: tarfile.TarFile, allowed: tuple[str, ...], label: str) -> float:
    """Refuse a tar with a member that is not a plain file or folder under one of ``allowed`` (no absolute path,
    no ``..``, no link); returns the newest member's mtime."""
    newest = 0.0
    for m in tar.getmembers():
        parts = Path(m.name).parts
        inside = any(m.name.rstrip("/") == a or m.name.startswith(a + "/") for a in allowed)
        if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()) or not inside:
            raise SsmlibError(f"{label}: refused, member {m.name!r} is not a plain file or folder under "
                              f"{' or '.join(allowed)}; nothing was unpacked{SKIP_ADVICE}")
        newest = max(newest, float(m.mtime))
    if newest == 0.0:
        raise SsmlibError(f"{label}: refused, it holds no file; nothing was unpacked")
    return newest


def check_lineages(tar: tarfile.TarFile, root: Path, results: str, label: str) -> None:
    """Refuse a tar in which a run's ``lineage.json`` does not continue the one committed under ``root``: its
    first leases must be the committed leases, unchanged (a tar from a call that started from an older tree
    is a branch of the campaign, not its next lease). The same for the campaign's ``config.json``: its
    ``design_changes`` must start with the committed ones (a config amended here while the call ran would be
    undone)."""
    depth = len(Path(results).parts)
    for m in tar.getmembers():
        parts = Path(m.name).parts
        if not (m.isfile() and m.name.startswith(results + "/")) or not (root / m.name).is_file():
            continue
        if len(parts) == depth + 1 and parts[-1] == "config.json":
            key = "design_changes"
        elif len(parts) == depth + 2 and parts[-1] == "lineage.json":
            key = "leases"
        else:
            continue
        new = _listed(tar.extractfile(m).read(), m.name, key, label)
        old = _listed((root / m.name).read_bytes(), m.name, key, label)
        if new[:len(old)] == old:
            continue
        if key == "design_changes":
            raise SsmlibError(
                f"{label}: refused, its {m.name} lacks design changes committed here since the call's tree was "
                f"sent ({len(old)} committed, {len(new)} in the tar): unpacking would undo them. Revert the "
                f"commit that amended the config (git revert), unpack, then amend again; nothing was unpacked")
        k = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), len(new))
        raise SsmlibError(
            f"{label}: refused, run {parts[-2]}'s lineage does not continue the committed one (lease {k + 1} "
            f"differs: {len(new)} leases in the tar, {len(old)} committed). This call started from a tree "
            f"without an earlier call's results, so it is a branch of the same state: unpack the calls in the "
            f"order they ran, or keep this one by hand under {results}/branches/ with a README; nothing was "
            f"unpacked")


def _listed(data: bytes, name: str, key: str, label: str) -> list:
    """The list ``key`` of the JSON document ``data`` (``[]`` when absent); refused in one line otherwise."""
    try:
        value = json.loads(data).get(key) or []
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
        raise SsmlibError(f"{label}: refused, {name} (in the tar or committed) cannot be read ({e}); nothing was "
                          f"unpacked") from None
    if not isinstance(value, list):
        raise SsmlibError(f"{label}: refused, {name} (in the tar or committed) has a {key} that is not a list; "
                          f"nothing was unpacked")
    return value


def stamp(mtime: float) -> str:
    """``YYYY-MM-DD-HHMM`` (UTC) of a tar member's mtime: the name of a lease's log."""
    return dt.datetime.fromtimestamp(mtime, dt.timezone.utc).strftime("%Y-%m-%d-%H%M")


def unpack(folder, game: str = "MsPacman", root=None, device_tag: str = "h200") -> list[str]:
    """Put what a lease returned (``folder``) into the repository at ``root`` (default: this one): each
    campaign's tar unpacked, its log stored. Returns one line per thing done. Refused in one line, with nothing
    changed, when the folder holds no campaign tar, a tar cannot be read or holds anything outside its
    campaign's folders, or a log of the same name is already stored with other contents."""
    from ..config import REPO_ROOT

    folder, root = Path(folder), Path(root or REPO_ROOT)
    if not folder.is_dir():
        raise SsmlibError(f"{folder} is not a folder: pass the folder the lease's files were copied to")
    with tempfile.TemporaryDirectory() as tmp:
        plan = []
        for lt in LEASE_TARS:
            parts = tar_parts(folder, lt.name)
            if not parts:
                continue
            results, ckpts = lt.results.format(game=game), lt.checkpoints.format(game=game)
            path = _joined(parts, Path(tmp))
            try:
                with tarfile.open(path) as tar:
                    newest = check_members(tar, (results, ckpts), lt.name)
                    check_lineages(tar, root, results, lt.name)
            except (tarfile.TarError, OSError, EOFError) as e:
                raise SsmlibError(f"{lt.name}: cannot be read ({e}); a split tar needs all its parts "
                                  f"({', '.join(p.name for p in parts)} found); nothing was unpacked"
                                  f"{SKIP_ADVICE}") from None
            log_src = lt.log_in(folder)
            log_dst = root / results / "logs" / f"{stamp(newest)}-{device_tag}.log"
            if log_src.is_file() and _stored_log(log_dst) not in (None, log_src.read_bytes()):
                raise SsmlibError(f"{log_dst} already exists with other contents: this lease looks unpacked "
                                  f"already, or two leases packed in the same minute; nothing was unpacked")
            plan.append((lt, path, results, ckpts, log_src, log_dst))
        study = None
        if (folder / STUDY_FILE).is_file():
            from .open_loop_samples import results_file

            study_dst = results_file(game, "campaign", root / "results")
            data, added, when = check_study(folder / STUDY_FILE, study_dst)
            # a study that scored nothing new (no sampling run trained, or it was cut short) changes nothing
            study_log = study_dst.parent / "logs" / f"{game}-campaign-{when}-{device_tag}.log" if added else None
            if study_log and (folder / STUDY_LOG).is_file() and \
                    _stored_log(study_log) not in (None, (folder / STUDY_LOG).read_bytes()):
                raise SsmlibError(f"{study_log} already exists with other contents; nothing was unpacked{STUDY_ADVICE}")
            study = (data, added, study_dst, study_log)
        if not plan and study is None:
            raise SsmlibError(f"{folder} holds no campaign tar ({', '.join(lt.name for lt in LEASE_TARS)} or its "
                              f"parts) and no {STUDY_FILE}: nothing to unpack")
        done = []
        for lt, path, results, ckpts, log_src, log_dst in plan:
            if lt.replace_checkpoints and (root / ckpts).exists():
                shutil.rmtree(root / ckpts)  # every open run's state is in the tar; a finished run has none
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # a second guard where Python has it
            with tarfile.open(path) as tar:
                for m in tar.getmembers():  # checked above: plain files and folders inside the campaign
                    tar.extract(m, root, set_attrs=False, **safe)
            done.append(f"unpacked {lt.name} ({path.stat().st_size:,} bytes) into {results} and {ckpts}")
            if log_src.is_file():
                done.append(f"stored {log_src.name} as {_store_log(log_src.read_bytes(), log_dst).relative_to(root)}")
            else:
                done.append(f"no {lt.log} beside {lt.name}: no log stored")
            if lt.replace_checkpoints:  # the I2A campaign's: a best run kept now serves its arm in the pilot's place
                from ..pretrained import retire_pilots

                done += retire_pilots(game, root / "checkpoints", root / "results")
        if study is not None and not study[1]:
            done.append(f"{STUDY_FILE} adds no checkpoint to {study[2].relative_to(root)}: nothing stored")
        elif study is not None:
            data, added, study_dst, log_dst = study
            # compressed (about 3x: it grows by ~43 kB a sampling checkpoint, and the repository travels with every
            # GPU call); read back through ssmlib.io.stored_path under its logical name
            packed = study_dst.with_name(study_dst.name + ".gz")
            atomic_write_packed(packed, data)
            drop_other_form(packed)  # the uncompressed file of before 2026-12-04
            done.append(f"stored {STUDY_FILE} as {packed.relative_to(root)} ({len(added)} checkpoint(s) added: "
                        f"{', '.join(added)})")
            if (folder / STUDY_LOG).is_file():
                stored = _store_log((folder / STUDY_LOG).read_bytes(), log_dst)
                done.append(f"stored {STUDY_LOG} as {stored.relative_to(root)}")
    return done


def _stored_log(name: Path) -> bytes | None:
    """The log stored under ``name`` (``NAME.log``, or ``NAME.log.gz`` as stored since 2026-12-04), or None."""
    return read_packed(name) if stored_path(name).exists() else None


def _store_log(data: bytes, name: Path) -> Path:
    """``data`` stored compressed as ``name.gz`` (a lease's log: about 5x smaller; the repository travels with every
    GPU call); returns its path."""
    path = name.with_name(name.name + ".gz")
    atomic_write_packed(path, data)
    drop_other_form(path)  # the same log stored plain by an unpack of before 2026-12-04 (checked equal)
    return path


# ------------------------------------------------------------------------------------------ command line


def _cli_unpack(args) -> int:
    from . import campaign_outlook, compile_warmup, i2a_campaign, zoo_campaign

    done = unpack(args.folder, args.game, device_tag=args.device_tag)
    print("\n".join(done))
    i2a_new = any(line.startswith(("unpacked i2a/", "unpacked i2a_campaign.tar")) for line in done)
    zoo_new = any(line.startswith("unpacked campaign.tar") for line in done)
    if i2a_new:
        print(f"wrote {i2a_campaign.write_table(args.game)}")
    code = zoo_campaign.report(args.game) if zoo_new else 0
    if zoo_new:  # a new lease log and lineage lease: what the compile warm-up bought, re-measured
        try:
            print(f"wrote {compile_warmup.write(args.game)}")
        except (SsmlibError, OSError, ValueError) as e:  # the lease's files are in place regardless
            print(f"compile-warmup.json not re-measured: {e}")
    if zoo_new or i2a_new:  # the projection reads both campaigns' lineages
        try:
            print(f"wrote {campaign_outlook.write(args.game)}")
        except SsmlibError as e:  # e.g. a game without an I2A campaign: the lease's files are in place regardless
            print(f"no outlook: {e}")
    try:
        from ..tree_size import report

        print(report())  # the next call carries this tree: over the limit, say so now, before it is sent
    except SsmlibError as e:
        print(f"tree size not measured: {e}")
    return code


def add_cli(subparsers) -> None:
    u = subparsers.add_parser("unpack", help="put a GPU lease's returned files in place: each campaign's tar "
                              "checked and unpacked, its log stored under logs/, the tables rewritten")
    u.add_argument("--from", dest="folder", required=True, help="the folder the lease's $OUT was copied to")
    u.add_argument("--game", default="MsPacman")
    u.add_argument("--device-tag", default="h200", help="the end of the logs' names (default h200)")
    u.set_defaults(func=_cli_unpack)
