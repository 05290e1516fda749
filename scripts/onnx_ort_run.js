// Runs an ONNX model with ONNX Runtime (onnxruntime-node) for
// scripts/onnx_parity.py.
//
//   NODE_PATH=scripts/node_modules node scripts/onnx_ort_run.js JOB.json
//
// JOB.json: {"model": "m.onnx", "threads": 1,
//            "runs": [{"inputs": {"input": {"file": "x.bin", "shape": [..]}, ...},
//                      "out_prefix": "dir/run0_"}]}
// Inputs and outputs are raw little-endian float32. For every run each
// output is written to out_prefix + name + ".bin"; one JSON line is printed
// with the output shapes and session.run wall and CPU times ("repeat" runs
// the same feeds several times, for timing).
//
// onnxruntime-node is installed with
//   (cd scripts && npm install --ignore-scripts onnxruntime-node@1.30.0)
// (the install script's download fails offline; the CPU binaries ship in
// the package). scripts/node_modules is git-ignored.
'use strict';

const fs = require('fs');
const path = require('path');

function loadOrt() {
  const tries = [path.join(__dirname, 'node_modules', 'onnxruntime-node'), 'onnxruntime-node'];
  for (const t of tries) {
    try {
      return require(t);
    } catch (e) {
      // try the next
    }
  }
  throw new Error('onnxruntime-node not found: (cd scripts && npm install --ignore-scripts onnxruntime-node@1.30.0)');
}

function readF32(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

async function main() {
  const ort = loadOrt();
  const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const session = await ort.InferenceSession.create(job.model, {
    intraOpNumThreads: job.threads || 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: job.optimization || 'all',
    executionMode: 'sequential',
  });
  const result = { outputs: [], times_ms: [], cpu_ms: [] };
  for (const run of job.runs) {
    const feeds = {};
    for (const [name, spec] of Object.entries(run.inputs)) {
      feeds[name] = new ort.Tensor('float32', readF32(spec.file), spec.shape);
    }
    const reps = run.repeat || 1;
    let out;
    for (let r = 0; r < reps; r++) {
      const t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      out = await session.run(feeds);
      result.times_ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      const c = process.cpuUsage(c0); // all threads of the process, µs
      result.cpu_ms.push((c.user + c.system) / 1000);
    }
    const shapes = {};
    for (const [name, t] of Object.entries(out)) {
      fs.writeFileSync(run.out_prefix + name + '.bin', Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      shapes[name] = t.dims;
    }
    result.outputs.push(shapes);
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
