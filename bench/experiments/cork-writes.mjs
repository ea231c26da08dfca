// Experiment for hot-path fix 1 (bench/RESULTS.md), without changing Cadence's code: coalesce all
// writes a socket gets within one tick into one syscall. Preload it into the Cadence process:
//   CADENCE_BENCH_NODE_FLAGS="--import $PWD/bench/experiments/cork-writes.mjs" npm run bench -- --quick --servers cadence
import net from 'node:net';
import process from 'node:process';

const write = net.Socket.prototype.write;
const uncork = (s) => {
  s.benchCorked = false;
  s.uncork();
};
net.Socket.prototype.write = function (...args) {
  if (!this.benchCorked && !this.destroyed) {
    this.benchCorked = true;
    this.cork();
    process.nextTick(uncork, this);
  }
  return write.apply(this, args);
};
