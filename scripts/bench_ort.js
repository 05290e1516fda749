// ONNX Runtime side of scripts/bench_compare.sh: times session.run on one of
// the graphs scripts/bench_torch.py exported.
//
//   NODE_PATH=<dir>/node_modules node scripts/bench_ort.js --dir DIR --row ROW \
//       --threads N [--runs 5] [--warmup 1]
//
// prints one JSON line: {"median_ms", "min_ms", "max_ms", "times_ms",
// "cpu_ms" (median process CPU time per run), ...}.
// Session: intraOpNumThreads N, interOpNumThreads 1, graphOptimizationLevel
// 'all', executionMode 'sequential'.  Inputs are random normal (fixed seed);
// shapes come from DIR/rows.json.
'use strict';

const fs = require('fs');
const path = require('path');

function loadOrt() {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    // Fall back to a binding found by hand (installed with --ignore-scripts).
    const roots = (process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean);
    for (const r of roots) {
      const p = path.join(r, 'onnxruntime-node');
      if (fs.existsSync(p)) return require(p);
    }
    throw e;
  }
}

function parseArgs(argv) {
  const a = { runs: 5, warmup: 1, threads: 1 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    switch (k) {
      case '--dir': a.dir = v; i++; break;
      case '--row': a.row = v; i++; break;
      case '--threads': a.threads = parseInt(v, 10); i++; break;
      case '--runs': a.runs = parseInt(v, 10); i++; break;
      case '--warmup': a.warmup = parseInt(v, 10); i++; break;
      default: throw new Error('unknown argument ' + k);
    }
  }
  if (!a.dir || !a.row) throw new Error('need --dir and --row');
  return a;
}

// Mulberry32 + Box-Muller: deterministic normal samples.
function rng(seed) {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6D2B79F5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    const u1 = Math.max(u(), 1e-12);
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u());
  };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  const rows = JSON.parse(fs.readFileSync(path.join(a.dir, 'rows.json'), 'utf8'));
  const row = rows[a.row];
  if (!row) throw new Error('row ' + a.row + ' not in rows.json');
  const session = await ort.InferenceSession.create(row.onnx, {
    intraOpNumThreads: a.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
  });
  const normal = rng(1234);
  const feeds = {};
  for (const [name, shape] of Object.entries(row.inputs)) {
    const n = shape.reduce((x, y) => x * y, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = normal();
    feeds[name] = new ort.Tensor('float32', data, shape);
  }
  for (let i = 0; i < a.warmup; i++) await session.run(feeds);
  const times = [];
  const cpu = [];
  for (let i = 0; i < a.runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1e3); // process CPU time of the run, ms
  }
  const median = (v) => {
    const s = v.slice().sort((x, y) => x - y);
    const n = s.length;
    return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  };
  const s = times.slice().sort((x, y) => x - y);
  const n = s.length;
  const med = median(times);
  let version = '';
  try { version = require('onnxruntime-node/package.json').version; } catch (e) { /* not needed */ }
  console.log(JSON.stringify({
    engine: 'onnxruntime', version, row: a.row, threads: a.threads,
    median_ms: med, min_ms: s[0], max_ms: s[n - 1], times_ms: times, cpu_ms: median(cpu),
  }));
  if (session.release) await session.release();
}

main().catch((e) => { console.error(e && e.stack ? e.stack : String(e)); process.exit(1); });
