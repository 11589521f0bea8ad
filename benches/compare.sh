#!/usr/bin/env bash
# Runs snap, restic, borg and `tar | zstd -T0 -3` through the same life
# cycle on the same data, and prints one table: wall time, peak memory and
# bytes stored for each tool and step, with snap's ratio against each.
#
# Data: a copy of a Rust toolchain (binaries, libraries, HTML documentation,
# about 52,000 files) plus a generated 280 MB SQLite database. The change
# between versions updates and inserts database rows, adds, deletes and edits
# files. Each timed step runs RUNS times on a warm page cache; the median is
# reported. Restores run last, interleaved across tools.
#
#   benches/compare.sh                 # everything, results in $WORK/results.md
#   RUNS=1 DB_MB=50 benches/compare.sh # a quicker, rougher run
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-/tmp/snap-compare}
RUNS=${RUNS:-3}
DB_MB=${DB_MB:-280}
SOURCE=${SOURCE:-$(rustc --print sysroot)}
export SNAP_PASSWORD=compare RESTIC_PASSWORD=compare BORG_PASSPHRASE=compare
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export RESTIC_CACHE_DIR=$WORK/cache/restic BORG_BASE_DIR=$WORK/cache/borg SNAP_CACHE_DIR=$WORK/cache/snap

need() { command -v "$1" >/dev/null 2>&1; }
if ! need restic || ! need borg || ! need zstd || ! need rsync; then
  echo "installing restic, borg, zstd and rsync from Debian's packages" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic borgbackup zstd rsync >/dev/null
fi
(cd "$ROOT" && cargo build --release -q)
SNAP=$ROOT/target/release/snap

# --- data ------------------------------------------------------------------
mkdir -p "$WORK"
if [ ! -f "$WORK/v2/.complete" ]; then
  rm -rf "$WORK/v1" "$WORK/v2"
  mkdir -p "$WORK/v1"
  echo "copying $SOURCE" >&2
  cp -a --dereference "$SOURCE" "$WORK/v1/toolchain"
  echo "generating a ${DB_MB} MB SQLite database" >&2
  python3 - "$WORK/v1/app.sqlite" "$DB_MB" <<'PY'
import os, random, sqlite3, sys
path, mb = sys.argv[1], int(sys.argv[2])
random.seed(1)
con = sqlite3.connect(path)
con.execute("pragma journal_mode=off")
con.execute("create table events(id integer primary key, ts integer, user text, kind text, body text, blob blob)")
words = "alpha beta gamma delta backup restore chunk index tree pack snapshot device bucket".split()
rows = mb * 1_000_000 // 300
batch = []
for i in range(rows):
    body = " ".join(random.choice(words) for _ in range(20))
    batch.append((i, 1_700_000_000 + i, f"user{i % 997}", random.choice(words), body, random.randbytes(96)))
    if len(batch) == 10_000:
        con.executemany("insert into events values (?,?,?,?,?,?)", batch)
        batch.clear()
con.executemany("insert into events values (?,?,?,?,?,?)", batch)
con.commit()
PY
  cp -a "$WORK/v1" "$WORK/v2"
  python3 - "$WORK/v2" <<'PY'
import os, random, sqlite3, sys
root = sys.argv[1]
random.seed(2)
con = sqlite3.connect(os.path.join(root, "app.sqlite"))
n = con.execute("select max(id) from events").fetchone()[0]
con.executemany("update events set kind = 'edited' where id = ?", [(random.randrange(n),) for _ in range(n // 100)])
con.executemany("insert into events values (?,?,?,?,?,?)",
                [(n + 1 + i, 1_800_000_000 + i, "new", "insert", "a new row " * 10, random.randbytes(96)) for i in range(10_000)])
con.commit()
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(root, "toolchain")) for f in fs)
for i, f in enumerate(files):
    if os.path.islink(f):
        continue
    if i % 150 == 0:
        os.remove(f)
    elif i % 400 == 7 and f.endswith(".html"):
        with open(f, "a") as fh:
            fh.write("<!-- edited -->\n")
os.makedirs(os.path.join(root, "notes"), exist_ok=True)
for i in range(500):
    with open(os.path.join(root, "notes", f"note-{i:03}.md"), "w") as fh:
        fh.write(f"# note {i}\n" + "some text of a new note\n" * random.randrange(5, 200))
PY
  touch "$WORK/v2/.complete"
fi
DATA=$WORK/data

use_version() { rsync -a --delete --exclude .complete "$WORK/$1/" "$DATA/"; find "$DATA" -type f -print0 | xargs -0 cat > /dev/null; }

# --- measuring ---------------------------------------------------------------
RESULTS=$WORK/raw.txt
: > "$RESULTS"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# timed TOOL STEP SETUP CMD: RUNS runs of the shell command CMD, each after
# the shell command SETUP (not timed); records the median wall time and the
# largest peak memory.
timed() {
  local tool=$1 step=$2 setup=$3 cmd=$4 times=() mems=() t m
  for _ in $(seq "$RUNS"); do
    eval "$setup"
    /usr/bin/time -o "$WORK/time.txt" -f "%e %M" bash -c "$cmd" > /dev/null 2> "$WORK/last.err" \
      || { echo "$tool $step failed:" >&2; cat "$WORK/last.err" >&2; exit 1; }
    read -r t m < "$WORK/time.txt"
    times+=("$t"); mems+=("$m")
  done
  echo "$tool $step $(printf '%s\n' "${times[@]}" | median) $(printf '%s\n' "${mems[@]}" | sort -n | tail -1)" >> "$RESULTS"
}
stored() { echo "$1 stored $(du -sb "$2" | cut -f1) 0" >> "$RESULTS"; }

# Restores go to a fresh tmpfs when one can be mounted: on ext4, deleting
# and recreating 50,000 files run after run makes the kernel's inode
# allocator, not the tool, dominate restore time.
RESTORE_FS="the disk ($(df -T "$WORK" | awk 'NR==2 {print $2}'))"
mkdir -p "$WORK/restore-fs"
if mountpoint -q "$WORK/restore-fs" || mount -t tmpfs -o size=8g tmpfs "$WORK/restore-fs" 2>/dev/null; then
  RESTORE_FS="tmpfs"
fi
export R=$WORK/repos DATA SNAP OUT=$WORK/restore-fs/out
mkdir -p "$R"
for tool in snap restic borg tar; do
  echo "== $tool" >&2
  use_version v1
  case $tool in
    snap)
      timed snap first "rm -rf $R/snap $WORK/cache/snap; $SNAP -q -r $R/snap init" '"$SNAP" -q -r "$R/snap" create "$DATA"'
      timed snap rerun : '"$SNAP" -q -r "$R/snap" create "$DATA"'
      use_version v2
      timed snap changed : '"$SNAP" -q -r "$R/snap" create "$DATA"'
      stored snap "$R/snap"
      ;;
    restic)
      timed restic first "rm -rf $R/restic $WORK/cache/restic; restic -q -r $R/restic init > /dev/null" 'restic -q -r "$R/restic" backup "$DATA"'
      timed restic rerun : 'restic -q -r "$R/restic" backup "$DATA"'
      use_version v2
      timed restic changed : 'restic -q -r "$R/restic" backup "$DATA"'
      stored restic "$R/restic"
      ;;
    borg)
      # Archive names must be new for every run; borg has no "latest".
      create='borg create --compression zstd,3 "$R/borg::s$(date +%s%N)" "$DATA"'
      timed borg first "rm -rf $R/borg $WORK/cache/borg; borg init -e repokey-blake2 $R/borg" "$create"
      timed borg rerun : "$create"
      use_version v2
      timed borg changed : "$create"
      stored borg "$R/borg"
      ;;
    tar)
      timed tar first 'rm -f $R/data.tar.zst' 'tar -cf - -C / "${DATA#/}" | zstd -T0 -3 -q -o "$R/data.tar.zst"'
      use_version v2
      timed tar changed 'rm -f $R/data.tar.zst' 'tar -cf - -C / "${DATA#/}" | zstd -T0 -3 -q -o "$R/data.tar.zst"'
      stored tar "$R/data.tar.zst"
      ;;
  esac
done

# Restores come last and interleaved: run k of every tool before run k+1 of
# any. On a virtual machine, memory the host has taken back makes the first
# writes after a pause slow; interleaving puts such drift on every tool
# alike instead of on whichever tool happens to run first.
restore_setup() {
  case $1 in
    snap|restic) echo 'rm -rf $OUT' ;;
    borg) echo 'rm -rf $OUT; mkdir -p $OUT; export LAST=$(borg list --last 1 --short $R/borg)' ;;
    tar) echo 'rm -rf $OUT; mkdir -p $OUT' ;;
  esac
}
restore_cmd() {
  case $1 in
    snap) echo '"$SNAP" -q -r "$R/snap" restore latest --target "$OUT"' ;;
    restic) echo 'restic -q -r "$R/restic" restore latest --target "$OUT"' ;;
    borg) echo 'cd "$OUT" && borg extract "$R/borg::$LAST"' ;;
    tar) echo 'zstd -d -q -c "$R/data.tar.zst" | tar -xf - -C "$OUT"' ;;
  esac
}
echo "== restores" >&2
declare -A RT RM
for _ in $(seq "$RUNS"); do
  for tool in snap restic borg tar; do
    eval "$(restore_setup $tool)"
    /usr/bin/time -o "$WORK/time.txt" -f "%e %M" bash -c "$(restore_cmd $tool)" > /dev/null 2> "$WORK/last.err" \
      || { echo "$tool restore failed:" >&2; cat "$WORK/last.err" >&2; exit 1; }
    read -r t m < "$WORK/time.txt"
    RT[$tool]+="$t "; RM[$tool]+="$m "
    if [ "$tool" = snap ]; then
      # The same restore again with --delete onto the tree it just wrote:
      # what making a folder match a snapshot costs when it already does
      # (every file's contents are read and verified, nothing is fetched).
      /usr/bin/time -o "$WORK/time.txt" -f "%e %M" bash -c '"$SNAP" -q -r "$R/snap" restore latest --target "$OUT" --delete --yes' > /dev/null 2> "$WORK/last.err" \
        || { echo "snap sync failed:" >&2; cat "$WORK/last.err" >&2; exit 1; }
      read -r t m < "$WORK/time.txt"
      RT[sync]+="$t "; RM[sync]+="$m "
    fi
  done
done
for tool in snap restic borg tar; do
  echo "$tool restore $(printf '%s\n' ${RT[$tool]} | median) $(printf '%s\n' ${RM[$tool]} | sort -n | tail -1)" >> "$RESULTS"
done
echo "snap sync $(printf '%s\n' ${RT[sync]} | median) $(printf '%s\n' ${RM[sync]} | sort -n | tail -1)" >> "$RESULTS"
rm -rf "$OUT"
mountpoint -q "$WORK/restore-fs" && umount "$WORK/restore-fs"

# --- table -------------------------------------------------------------------
python3 - "$RESULTS" "$WORK/results.md" "$(nproc)" "$(free -g | awk '/Mem:/ {print $2}')" "$DATA" "$RESTORE_FS" \
  "$($SNAP --version)" "$(restic version | cut -d' ' -f1-2)" "$(borg --version)" <<'PY'
import collections, sys
raw, out, cores, mem, data, restore_fs, *versions = sys.argv[1:]
r = collections.defaultdict(dict)
for line in open(raw):
    tool, step, a, b = line.split()
    r[tool][step] = (float(a), int(b))
tools = ["snap", "restic", "borg", "tar"]
lines = [f"Machine: {cores} cores, {mem} GiB. Tools: {', '.join(versions)}, tar | zstd -T0 -3.",
         f"Data: {data}, the same for every tool. Restores to {restore_fs}. Median of the timed runs.", "",
         "| step | " + " | ".join(tools) + " | snap/restic | snap/borg | snap/tar |",
         "|---|" + "---|" * (len(tools) + 3)]
def cell(t, s, kind):
    v = r[t].get(s)
    if v is None:
        return "—"
    return {"time": f"{v[0]:.2f} s", "mem": f"{v[1] / 1024:.0f} MB", "bytes": f"{v[0] / 1e6:.0f} MB"}[kind]
def ratio(s, other, idx):
    a, b = r["snap"].get(s), r[other].get(s)
    return f"{a[idx] / b[idx]:.2f}" if a and b and b[idx] else "—"
for s in ["first", "rerun", "changed", "restore"]:
    lines.append(f"| {s} time | " + " | ".join(cell(t, s, "time") for t in tools) + " | "
                 + " | ".join(ratio(s, o, 0) for o in tools[1:]) + " |")
for s in ["first", "rerun", "changed", "restore"]:
    lines.append(f"| {s} peak memory | " + " | ".join(cell(t, s, "mem") for t in tools) + " | "
                 + " | ".join(ratio(s, o, 1) for o in tools[1:]) + " |")
lines.append("| stored after change | " + " | ".join(cell(t, "stored", "bytes") for t in tools) + " | "
             + " | ".join(ratio("stored", o, 0) for o in tools[1:]) + " |")
if "sync" in r["snap"] and "restore" in r["snap"]:
    a, b = r["snap"]["sync"][0], r["snap"]["restore"][0]
    lines += ["", f"snap restore --delete onto a tree that already matches: {a:.2f} s, "
              f"{a / b:.2f} of snap's fresh restore ({b:.2f} s), contents verified."]
text = "\n".join(lines) + "\n"
open(out, "w").write(text)
print(text)
PY
