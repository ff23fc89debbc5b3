// Drives the official Daytona TypeScript SDK (@daytonaio/sdk 0.218.0) against a real
// `cairn serve` with its build engine (tests/api/compat_sdk_test.cc starts everything).
//
// Env:
//   CAIRN_API_URL           ".../api" of the server
//   CAIRN_API_KEY           an API key of the server
//   NODE_MODULES            tests/node/node_modules
//   CAIRN_PULL_IMAGE        an image in a registry the server can reach ("127.0.0.1:PORT/x:tag")
//   CAIRN_PULL_ENTRYPOINT   JSON array: that image's ENTRYPOINT + CMD
//   CAIRN_BASE_IMAGE        a busybox image already in the server's local catalog
//   CAIRN_COMPAT_VERBOSE    if set, the build log the SDK received is printed
//
// Prints "OK <steps>" and exits 0 when every step behaved as Daytona's server would; otherwise
// prints "FAILED: <why>" and exits 1.
'use strict';
const path = require('path');
const fs = require('fs');
const os = require('os');
const crypto = require('crypto');
const assert = require('assert');
const sdk = require(path.join(process.env.NODE_MODULES, '@daytonaio/sdk'));
const { Daytona, Image, DaytonaError, DaytonaConflictError, DaytonaNotFoundError } = sdk;

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

async function expectError(promise, type, status, what) {
  try {
    await promise;
  } catch (e) {
    check(e instanceof type, `${what}: not a ${type.name}: ${e && e.constructor && e.constructor.name}: ${e}`);
    if (status !== undefined) {
      check(e.statusCode === status, `${what}: status ${e.statusCode}, wanted ${status}: ${e.message}`);
    }
    return e;
  }
  throw new Error(what + ': did not fail');
}

async function main() {
  for (const v of ['CAIRN_API_URL', 'CAIRN_API_KEY', 'CAIRN_PULL_IMAGE', 'CAIRN_PULL_ENTRYPOINT', 'CAIRN_BASE_IMAGE']) {
    check(process.env[v], v + ' is set');
  }
  const daytona = new Daytona({
    apiKey: process.env.CAIRN_API_KEY,
    apiUrl: process.env.CAIRN_API_URL,
    target: 'us',
  });
  const steps = [];

  // 1. From an image name: pending → pulling → active, pulled from the loopback registry.
  const pullImage = process.env.CAIRN_PULL_IMAGE;
  const pulled = await daytona.snapshot.create({ name: 'compat/pulled:1', image: pullImage }, { timeout: 120 });
  check(pulled.state === 'active', 'pulled snapshot active, got ' + pulled.state + ' ' + pulled.errorReason);
  check(pulled.imageName === pullImage, 'imageName ' + pulled.imageName);
  check(typeof pulled.size === 'number' && pulled.size > 0, 'pulled size > 0, got ' + pulled.size);
  assert.deepStrictEqual(pulled.entrypoint, JSON.parse(process.env.CAIRN_PULL_ENTRYPOINT), 'pulled entrypoint');
  steps.push('create(imageName)');

  // 2. From an Image with local files: > 5 MiB context → multipart upload; onLogs streams the
  // real build log (RUN output included).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-compat-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));  // on failure too
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello from the official SDK\n');
  fs.mkdirSync(path.join(dir, 'data', 'nested'), { recursive: true });
  const big = crypto.randomBytes(6 * 1024 * 1024);
  fs.writeFileSync(path.join(dir, 'data', 'nested', 'big.bin'), big);
  fs.writeFileSync(path.join(dir, 'data', 'small.txt'), 'small\n');
  const bigSha = crypto.createHash('sha256').update(big).digest('hex');
  const image = Image.base(process.env.CAIRN_BASE_IMAGE)
    .addLocalFile(path.join(dir, 'hello.txt'), '/app/hello.txt')
    .addLocalDir(path.join(dir, 'data'), '/app/data')
    // The sleep keeps the build `building` for longer than the SDK's 1 s poll, so that the SDK
    // sees that state and opens the log stream (a faster build would go pending → active
    // between two polls, and the SDK would never ask for logs).
    .runCommands('cat /app/hello.txt', 'sha256sum /app/data/nested/big.bin', 'sleep 3')
    .entrypoint(['sleep', 'infinity']);
  const logs = [];
  const built = await daytona.snapshot.create(
    { name: 'compat-built', image, resources: { cpu: 1, memory: 1, disk: 3 } },
    { onLogs: (chunk) => logs.push(chunk), timeout: 120 },
  );
  check(built.state === 'active', 'built snapshot active, got ' + built.state + ' ' + built.errorReason);
  check(typeof built.size === 'number' && built.size > 0, 'built size > 0, got ' + built.size);
  assert.deepStrictEqual(built.entrypoint, ['sleep', 'infinity'], 'built entrypoint');
  const text = logs.join('\n');
  if (process.env.CAIRN_COMPAT_VERBOSE) console.log(text);
  check(text.includes('hello from the official SDK'), 'RUN output of the uploaded file in the logs:\n' + text);
  check(text.includes(bigSha), 'the multipart object arrived whole (sha256sum in RUN):\n' + text);
  check(text.includes('Created snapshot compat-built (active)'), 'the SDK saw the end:\n' + text);
  check(built.buildInfo && built.buildInfo.dockerfileContent === image.dockerfile, 'buildInfo.dockerfileContent');
  steps.push('create(Image with local files, onLogs, multipart)');

  // 3. A build that fails: the SDK raises with the server's errorReason naming the step, and
  // onLogs got the step's output (the sleep again lets the SDK see `building`).
  const failing = Image.base(process.env.CAIRN_BASE_IMAGE)
    .runCommands('echo about to fail && sleep 2 && exit 3');
  const failLogs = [];
  const failed = await expectError(
    daytona.snapshot.create({ name: 'compat-failing', image: failing },
      { onLogs: (chunk) => failLogs.push(chunk), timeout: 120 }),
    DaytonaError, undefined, 'failing build');
  check(/exit 3|exit code 3|exit status 3/.test(failed.message), 'errorReason names the failure: ' + failed.message);
  check(failed.message.includes('Failed to create snapshot. Name: compat-failing'), 'the SDK\'s message: ' + failed.message);
  const failText = failLogs.join('\n');
  check(failText.includes('about to fail'), 'the failing step\'s output in the logs:\n' + failText);
  check(failText.includes('ERROR'), 'an ERROR line in the logs:\n' + failText);
  if (process.env.CAIRN_COMPAT_VERBOSE) console.log(failText + '\n' + failed.message);
  const failedSnap = await daytona.snapshot.get('compat-failing');
  check(failedSnap.state === 'error', 'failed snapshot state ' + failedSnap.state);
  steps.push('build error');

  // 4. get, list.
  const got = await daytona.snapshot.get('compat-built');
  check(got.id === built.id, 'get by name');
  const byId = await daytona.snapshot.get(pulled.id);
  check(byId.name === 'compat/pulled:1', 'get by id');
  const page = await daytona.snapshot.list();
  check(page.total === 3 && page.items.length === 3, 'list total ' + page.total);
  const names = page.items.map((s) => s.name).sort();
  assert.deepStrictEqual(names, ['compat-built', 'compat-failing', 'compat/pulled:1'], 'list names');
  steps.push('get list');

  // 5. duplicate name → 409 (DaytonaConflictError), unknown → 404 (DaytonaNotFoundError).
  const dup = await expectError(daytona.snapshot.create({ name: 'compat-built', image: pullImage }),
    DaytonaConflictError, 409, 'duplicate');
  check(dup.message.includes('compat-built'), 'conflict message names the snapshot: ' + dup.message);
  await expectError(daytona.snapshot.get('no-such-snapshot'), DaytonaNotFoundError, 404, 'unknown');
  steps.push('409 404');

  // 6. delete; the name is gone at once and free for reuse.
  await daytona.snapshot.delete(got);
  await daytona.snapshot.delete(failedSnap);
  await expectError(daytona.snapshot.get('compat-built'), DaytonaNotFoundError, 404, 'deleted');
  const after = await daytona.snapshot.list();
  check(after.total === 1 && after.items[0].name === 'compat/pulled:1', 'list after delete ' + after.total);
  steps.push('delete');

  // 7. The same definition again: the deleted snapshot's image may be gone or not, but a fresh
  // create under the freed name must reach active.
  const again = await daytona.snapshot.create({ name: 'compat-built', image }, { timeout: 120 });
  check(again.state === 'active', 'recreated under the freed name: ' + again.state + ' ' + again.errorReason);
  check(again.id !== built.id, 'a new snapshot id');
  steps.push('reuse name');

  console.log('OK ' + steps.join(' | '));
}

main().catch((e) => {
  console.error('FAILED:', e && e.stack ? e.stack : e);
  process.exit(1);
});
