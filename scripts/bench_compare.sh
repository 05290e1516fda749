#!/usr/bin/env bash
# Times the ConvLSTM forward pass in PyTorch, ONNX Runtime and convlstm-go
# side by side, in one run, and prints a markdown table.
#
#   scripts/bench_compare.sh [--quick] [--rows mnist,mnist-b8,radar,stream]
#                            [--models all|none|unet-64,...]
#                            [--threads 1,2] [--rounds 3] [--runs 5] [--keep]
#                            [--src tree|head]
#
# Rows (models: scripts/reference.py's ConvLSTM, default init, fixed seed):
#   mnist     1,10,1,64,64    hidden [64,64]  kernels 3x3,3x3
#   mnist-b8  8,10,1,64,64    hidden [64,64]  kernels 3x3,3x3
#   radar     1,12,1,128,128  hidden [32,64]  kernels 5x5,3x3
#   stream    1,1,1,64,64 from a random non-zero state, hidden [64,64]
#             (convlstm-go: `bench --stream`, one Stream.Step per run with the
#             state carried inside the runtime; PyTorch and ONNX Runtime take
#             h/c as inputs and return them, as their APIs require)
#
# Whole models (issue 8), --models (default all; none skips them): the rows
# of scripts/bench_models.py (mnist-real, openstl-mmnist, encfc-radar,
# unet-64, peephole-64, rollout-loop: torch.onnx.export graphs run by
# `convlstm-run bench --weights ROW.onnx`), timed by its `compare` with the
# same binary, threads, rounds and runs; their table follows the first, with
# the speed-up against the faster anchor (issue 8's goal: 1.5x; never
# below 1x).
#
# Each measurement: one warm-up run, then the median of --runs runs (5).
# Each cell: the median of --rounds rounds (3); in every round the three
# engines run one after the other on the same row and thread count (their
# order rotating from round to round) so that they see the same machine load.
# --quick: 1 round of 3 runs.  Target (issue 11): convlstm-go >= 2x faster than the
# faster of PyTorch and ONNX Runtime (PASS/MISS).
#
# Anchors, installed if missing:
#   PyTorch: Debian's python3-torch (always run with /usr/bin/python3).
#   ONNX Runtime: onnxruntime-node@1.30.0 from npm, installed with
#     --ignore-scripts into $CONVLSTM_BENCH_CACHE (default
#     ~/.cache/convlstm-bench); its CPU binaries ship inside the package.
# Exported models are cached there too (keyed by the scripts' and torch's
# versions).  convlstm-go is built from this checkout's work tree (or, with
# --src head or when the work tree does not build, from HEAD) into a temp dir.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3
ORT_VERSION=1.30.0
CACHE=${CONVLSTM_BENCH_CACHE:-$HOME/.cache/convlstm-bench}
ALL_ROWS=mnist,mnist-b8,radar,stream
ROWS=$ALL_ROWS
THREADS=1,2
ROUNDS=3
RUNS=5
WARMUP=1
KEEP=0
SRC=tree
MODEL_ROWS=all
TARGET=2
ENGINE_TIMEOUT=${CONVLSTM_BENCH_TIMEOUT:-600}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

while [ $# -gt 0 ]; do
	case "$1" in
	--quick) ROUNDS=1; RUNS=3 ;;
	--rows) ROWS=${2:?--rows needs a list}; shift ;;
	--rows=*) ROWS=${1#--rows=} ;;
	--threads) THREADS=${2:?--threads needs a list}; shift ;;
	--threads=*) THREADS=${1#--threads=} ;;
	--rounds) ROUNDS=${2:?}; shift ;;
	--runs) RUNS=${2:?}; shift ;;
	--models) MODEL_ROWS=${2:?--models needs all, none or a list}; shift ;;
	--models=*) MODEL_ROWS=${1#--models=} ;;
	--keep) KEEP=1 ;;
	--src) SRC=${2:?--src needs tree or head}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "bench_compare.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done
for r in ${ROWS//,/ }; do
	case ",$ALL_ROWS," in *",$r,"*) ;; *) echo "bench_compare.sh: unknown row '$r' (rows: $ALL_ROWS)" >&2; exit 2 ;; esac
done
for t in ${THREADS//,/ }; do
	[[ $t =~ ^[1-9][0-9]*$ ]] || { echo "bench_compare.sh: bad thread count '$t'" >&2; exit 2; }
done
case $SRC in tree | head) ;; *) echo "bench_compare.sh: --src must be tree or head" >&2; exit 2 ;; esac
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "bench_compare.sh: --rounds/--runs must be positive" >&2; exit 2; }

log() { echo "bench: $*" >&2; }
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
START=$(date +%s)

# ---------------------------------------------------------------- anchors
if ! "$PY" -c 'import torch, numpy' >/dev/null 2>&1; then
	log "installing Debian's PyTorch (python3-torch python3-numpy python3-onnx)"
	$SUDO apt-get update >&2
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y python3-torch python3-numpy python3-onnx >&2
	"$PY" -c 'import torch, numpy' || { echo "bench_compare.sh: $PY still cannot import torch" >&2; exit 1; }
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	log "installing node and npm from Debian"
	$SUDO apt-get update >&2
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y nodejs npm >&2
fi
command -v go >/dev/null 2>&1 || { echo "bench_compare.sh: go not found on PATH" >&2; exit 1; }

ORT_PKG=$CACHE/node_modules/onnxruntime-node
ort_ok() { node -e "require('$ORT_PKG')" >/dev/null 2>&1; }
installed_ort=$(node -p "require('$ORT_PKG/package.json').version" 2>/dev/null || true)
if [ "$installed_ort" != "$ORT_VERSION" ] || ! ort_ok; then
	log "installing onnxruntime-node@$ORT_VERSION into $CACHE (--ignore-scripts)"
	mkdir -p "$CACHE"
	[ -f "$CACHE/package.json" ] || echo '{"name": "convlstm-bench", "private": true}' >"$CACHE/package.json"
	(cd "$CACHE" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error "onnxruntime-node@$ORT_VERSION" >&2)
fi
if ! ort_ok; then
	# The binding finds libonnxruntime.so.1 through its RUNPATH ($ORIGIN); if
	# that fails, point the loader at the directory by hand.
	bindir=$(ls -d "$ORT_PKG"/bin/napi-v*/linux/x64 2>/dev/null | head -1 || true)
	if [ -n "$bindir" ] && [ -f "$bindir/onnxruntime_binding.node" ]; then
		export LD_LIBRARY_PATH="$bindir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	fi
	if ! ort_ok; then
		echo "bench_compare.sh: require('onnxruntime-node') fails after install:" >&2
		node -e "require('$ORT_PKG')" >&2 || true
		exit 1
	fi
fi
export NODE_PATH="$CACHE/node_modules"

# ---------------------------------------------------------------- build and export
TMP=$(mktemp -d "${TMPDIR:-/tmp}/convlstm-bench.XXXXXX")
if [ "$KEEP" = 1 ]; then log "keeping $TMP"; else trap 'rm -rf "$TMP"' EXIT; fi

# The work tree by default; --src head builds the last commit (git archive
# into the temp dir, the checkout untouched), which is also the fallback when
# the work tree does not build (others' edits in progress).
BUILT_FROM="work tree"
if [ "$SRC" = head ] || ! { log "building convlstm-run from the work tree"; (cd "$ROOT" && go build -o "$TMP/convlstm-run" ./cmd/convlstm-run); }; then
	[ "$SRC" = head ] || log "the work tree does not build: building the last commit (HEAD) instead"
	mkdir -p "$TMP/src"
	(cd "$ROOT" && git archive HEAD) | tar -x -C "$TMP/src"
	(cd "$TMP/src" && go build -o "$TMP/convlstm-run" ./cmd/convlstm-run)
	BUILT_FROM="HEAD (git archive)"
fi
GO_BIN=$TMP/convlstm-run

TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)')
KEY=$(cat "$ROOT/scripts/bench_torch.py" "$ROOT/scripts/reference.py" | sha256sum | cut -c1-12)
MODELS=$CACHE/models-$TORCH_VERSION-$KEY
mkdir -p "$MODELS"
log "exporting models to $MODELS (cached)"
"$PY" "$ROOT/scripts/bench_torch.py" export --out "$MODELS" --rows "$ROWS" >&2

rowfield() { # rowfield ROW FIELD -> value from rows.json
	"$PY" -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]][sys.argv[3]]; print(",".join(map(str,v)) if isinstance(v,list) else v)' \
		"$MODELS/rows.json" "$1" "$2"
}
median_of() { tr -d '\n' | sed -n 's/.*"median_ms": *\([0-9.eE+-]*\).*/\1/p'; }

# Which kernel convlstm-go picks here (a tiny run).
first_row=${ROWS%%,*}
KERNEL=$("$GO_BIN" bench --weights "$(rowfield "$first_row" weights)" --shape 1,1,1,8,8 --runs 1 --json |
	tr -d '\n' | sed -n 's/.*"kernel": *"\([^"]*\)".*/\1/p')

CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
GIT=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(cd "$ROOT" && git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (+ uncommitted changes)" || true)

echo "## convlstm-go vs PyTorch vs ONNX Runtime"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- CPU: ${CPU:-unknown} ($(nproc) cores), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- convlstm-go kernel: ${KERNEL:-unknown}, built from $BUILT_FROM at commit $GIT$([ "$BUILT_FROM" = "work tree" ] && echo "$DIRTY"), $(go version | cut -d' ' -f3)"
echo "- PyTorch $TORCH_VERSION (Debian), ONNX Runtime $ORT_VERSION (onnxruntime-node, CPU EP), node $(node --version)"
echo "- each cell: median of $ROUNDS round(s) of [$WARMUP warm-up + median of $RUNS runs], engines interleaved per round; forward pass only"
echo

# ---------------------------------------------------------------- measure
RESULTS=$TMP/results.txt
: >"$RESULTS"
ENGINES=(pytorch ort go)

run_engine() { # run_engine ENGINE ROW THREADS -> JSON on stdout
	local engine=$1 row=$2 t=$3
	case $engine in
	pytorch)
		timeout "$ENGINE_TIMEOUT" "$PY" "$ROOT/scripts/bench_torch.py" time --dir "$MODELS" --row "$row" \
			--threads "$t" --runs "$RUNS" --warmup "$WARMUP" ;;
	ort)
		timeout "$ENGINE_TIMEOUT" node "$ROOT/scripts/bench_ort.js" --dir "$MODELS" --row "$row" \
			--threads "$t" --runs "$RUNS" --warmup "$WARMUP" ;;
	go)
		local extra=()
		# The stream row: convlstm-go's streaming API keeps the state inside
		# the runtime between steps (PyTorch and ONNX Runtime take it as inputs).
		[ "$(rowfield "$row" random_state)" = True ] && extra=(--random-state --stream)
		timeout "$ENGINE_TIMEOUT" "$GO_BIN" bench --weights "$(rowfield "$row" weights)" \
			--shape "$(rowfield "$row" shape)" --threads "$t" --runs "$RUNS" --warmup "$WARMUP" --json "${extra[@]}" ;;
	esac
}

FAILED=0
for ((round = 1; round <= ROUNDS; round++)); do
	cell=0
	for row in ${ROWS//,/ }; do
		for t in ${THREADS//,/ }; do
			for ((k = 0; k < 3; k++)); do
				engine=${ENGINES[$(((k + round - 1 + cell) % 3))]}
				if out=$(run_engine "$engine" "$row" "$t" 2>"$TMP/err.txt"); then
					ms=$(printf '%s' "$out" | median_of)
				else
					ms=
				fi
				if [ -z "$ms" ]; then
					ms=NA
					FAILED=1
					log "round $round $row t=$t $engine FAILED:"
					tail -5 "$TMP/err.txt" >&2
				fi
				if [ "$engine" = go ] && [ "$ms" != NA ]; then
					k_used=$(printf '%s' "$out" | tr -d '\n' | sed -n 's/.*"kernel": *"\([^"]*\)".*/\1/p')
					[ -n "$k_used" ] && [ "$k_used" != "$KERNEL" ] && log "note: convlstm-go used kernel $k_used on $row"
				fi
				echo "$row $t $engine $round $ms" >>"$RESULTS"
				[ "$ms" = NA ] || ms=$(printf '%.2f' "$ms")
				log "round $round/$ROUNDS  $row  threads=$t  $engine: $ms ms"
			done
			cell=$((cell + 1))
		done
	done
done

# ---------------------------------------------------------------- table
"$PY" - "$RESULTS" "$ROWS" "$THREADS" "$TARGET" <<'EOF'
import statistics, sys
path, rows, threads, target = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(","), float(sys.argv[4])
res = {}
for line in open(path):
    row, t, engine, rnd, ms = line.split()
    res.setdefault((row, t, engine), []).append(None if ms == "NA" else float(ms))

def cell(row, t, engine):
    v = res.get((row, t, engine), [])
    if not v or any(x is None for x in v):
        return None
    return statistics.median(v)

def fmt(x):
    return "n/a" if x is None else ("%.1f" % x if x >= 10 else "%.2f" % x)

print("| row | threads | PyTorch ms | ORT ms | convlstm-go ms | speed-up vs faster anchor | target >=%gx |" % target)
print("|---|---:|---:|---:|---:|---:|:---:|")
for row in rows:
    for t in threads:
        pt, ort, go = cell(row, t, "pytorch"), cell(row, t, "ort"), cell(row, t, "go")
        anchors = [a for a in (pt, ort) if a is not None]
        if go is None or not anchors:
            sp, verdict = "n/a", "n/a"
        else:
            s = min(anchors) / go
            sp, verdict = "%.2f\u00d7" % s, ("PASS" if s >= target else "MISS")
        print("| %s | %s | %s | %s | %s | %s | %s |" % (row, t, fmt(pt), fmt(ort), fmt(go), sp, verdict))
EOF

# ---------------------------------------------------------------- whole models
if [ "$MODEL_ROWS" != none ]; then
	models_args=(compare --go "$GO_BIN" --threads "$THREADS" --rounds "$ROUNDS" --runs "$RUNS" --warmup "$WARMUP" --json "$TMP/models.jsonl")
	[ "$MODEL_ROWS" = all ] || models_args+=(--rows "$MODEL_ROWS")
	echo
	if ! "$PY" "$ROOT/scripts/bench_models.py" "${models_args[@]}"; then
		echo "bench_compare.sh: the whole-model rows failed (scripts/bench_models.py)" >&2
		FAILED=1
	fi
fi
echo
echo "total time: $(($(date +%s) - START)) s; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $FAILED
