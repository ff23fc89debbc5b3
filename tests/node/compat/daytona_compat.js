// Drives the official Daytona TypeScript SDK (@daytonaio/sdk 0.218.0) against a Cairn server.
// Env: CAIRN_API_URL (".../api"), CAIRN_API_KEY, NODE_MODULES (tests/node/node_modules).
// Prints "OK <steps>" and exits 0 when every step behaved as Daytona's server would.
'use strict';
const path = require('path');
const fs = require('fs');
const os = require('os');
const crypto = require('crypto');
const { Daytona, Image, DaytonaError } = require(path.join(process.env.NODE_MODULES, '@daytonaio/sdk'));

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

async function expectStatus(promise, status, what) {
  try {
    await promise;
  } catch (e) {
    check(e instanceof DaytonaError, what + ': not a DaytonaError: ' + e);
    check(e.statusCode === status, what + `: status ${e.statusCode}, wanted ${status}: ${e.message}`);
    return e;
  }
  throw new Error(what + ': did not fail');
}

async function main() {
  const daytona = new Daytona({
    apiKey: process.env.CAIRN_API_KEY,
    apiUrl: process.env.CAIRN_API_URL,
    target: 'us',
  });
  const steps = [];

  // 1. From an image name.
  const pulled = await daytona.snapshot.create({ name: 'compat/alpine:3.19', image: 'alpine:3.19' });
  check(pulled.state === 'active', 'pulled snapshot active, got ' + pulled.state);
  check(pulled.imageName === 'alpine:3.19', 'imageName');
  steps.push('create(imageName)');

  // 2. From an Image with local files: > 5 MiB context → multipart upload; onLogs streams.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-compat-'));
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello from the official SDK\n');
  fs.mkdirSync(path.join(dir, 'data', 'nested'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'data', 'nested', 'big.bin'), crypto.randomBytes(6 * 1024 * 1024));
  fs.writeFileSync(path.join(dir, 'data', 'small.txt'), 'small\n');
  const image = Image.base('alpine:3.19')
    .addLocalFile(path.join(dir, 'hello.txt'), '/app/hello.txt')
    .addLocalDir(path.join(dir, 'data'), '/app/data')
    .runCommands('cat /app/hello.txt');
  const logs = [];
  const built = await daytona.snapshot.create(
    { name: 'compat-built', image, resources: { cpu: 1, memory: 1, disk: 3 } },
    { onLogs: (chunk) => logs.push(chunk), timeout: 120 },
  );
  check(built.state === 'active', 'built snapshot active, got ' + built.state + ' ' + built.errorReason);
  const text = logs.join('\n');
  check(text.includes('hello.txt 28'), 'build saw the uploaded context: ' + text);
  check(text.includes('big.bin 6291456'), 'the multipart object arrived whole: ' + text);
  steps.push('create(Image with local files, onLogs, multipart)');

  // 3. get, list.
  const got = await daytona.snapshot.get('compat-built');
  check(got.id === built.id, 'get by name');
  const byId = await daytona.snapshot.get(pulled.id);
  check(byId.name === 'compat/alpine:3.19', 'get by id');
  const page = await daytona.snapshot.list();
  check(page.total === 2 && page.items.length === 2, 'list total ' + page.total);
  steps.push('get list');

  // 4. duplicate name → 409, unknown → 404.
  await expectStatus(daytona.snapshot.create({ name: 'compat-built', image: 'alpine:3.19' }), 409, 'duplicate');
  await expectStatus(daytona.snapshot.get('no-such-snapshot'), 404, 'unknown');
  steps.push('409 404');

  // 5. delete; the name is gone.
  await daytona.snapshot.delete(got);
  await expectStatus(daytona.snapshot.get('compat-built'), 404, 'deleted');
  steps.push('delete');

  fs.rmSync(dir, { recursive: true, force: true });
  console.log('OK ' + steps.join(' | '));
}

main().catch((e) => {
  console.error('FAILED:', e && e.stack ? e.stack : e);
  process.exit(1);
});
