// A tiny job scheduler used as a code fixture for file search tests.

class Scheduler {
  constructor() {
    this.queue = [];
  }

  add(due, job) {
    this.queue.push({ due, job });
    this.queue.sort((a, b) => a.due - b.due);
  }

  runDue(now = Date.now()) {
    const ran = [];
    while (this.queue.length && this.queue[0].due <= now) {
      const { job } = this.queue.shift();
      job();
      ran.push(job);
    }
    return ran;
  }
}

// Exponential backoff with a cap: the delay before retry number `attempt`.
function backoffDelay(attempt, base = 0.5, cap = 30.0) {
  return Math.min(cap, base * 2 ** attempt);
}

module.exports = { Scheduler, backoffDelay };
