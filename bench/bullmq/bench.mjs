// BullMQ reference numbers for bench/run.sh: no-op jobs on the same Redis the streamfleet queue-worker uses.
// For each concurrency: enqueue N jobs with addBulk (removeOnComplete, i.e. no result retention), then one
// Worker processes them; prints key=value lines (best of the concurrencies is taken by run.sh).
//
//   node bench.mjs --port 6379 --jobs 50000 --concurrency 1,10,50
import { Queue, Worker } from 'bullmq';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const port = Number(args.port ?? 6379);
const jobs = Number(args.jobs ?? 50000);
const concurrencies = String(args.concurrency ?? '1,10,50').split(',').map(Number);
const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };

function emit(k, v) { console.log(`${k}=${v}`); }

for (const c of concurrencies) {
  const name = `bench-c${c}`;
  const queue = new Queue(name, { connection });
  await queue.obliterate({ force: true });
  const t0 = performance.now();
  for (let i = 0; i < jobs; i += 1000) {
    const batch = [];
    for (let k = i; k < Math.min(jobs, i + 1000); ++k) {
      batch.push({ name: 'noop', data: { i: k }, opts: { removeOnComplete: true, removeOnFail: true } });
    }
    await queue.addBulk(batch);
  }
  const enqueueS = (performance.now() - t0) / 1000;
  let done = 0;
  let started = 0;
  const finished = new Promise((resolve) => {
    const worker = new Worker(name, async () => {}, { connection, concurrency: c, autorun: false });
    worker.on('completed', () => {
      if (++done === jobs) resolve(worker);
    });
    started = performance.now();
    worker.run();
  });
  const worker = await finished;
  const processS = (performance.now() - started) / 1000;
  emit(`bullmq_c${c}_enqueue_jps`, (jobs / enqueueS).toFixed(0));
  emit(`bullmq_c${c}_process_jps`, (jobs / processS).toFixed(0));
  emit(`bullmq_c${c}_rss_mb`, (process.memoryUsage().rss / 1048576).toFixed(1));
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
}
process.exit(0);
