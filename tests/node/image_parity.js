// Runs one case of tests/image/parity_cases.json through the real @daytonaio/sdk@0.218.0 and
// prints what the SDK produces: dockerfile text, contextList, and per context entry the MD5
// context hash and the context.tar bytes (base64), or the error the SDK throws.
//
//   node image_parity.js <cases.json> <case name> <case dir>
//
// The caller (tests/image/parity_test.cc) has created the case's files in <case dir>, runs this
// with the case dir as working directory and HOME=<case dir>/home, and compares byte for byte.
// Hashes come from the SDK's own ObjectStorage.computeHashForPathMd5; archives from its own
// ObjectStorage.uploadAsTar, with the S3 client's send() replaced to capture the body.
'use strict';
const fs = require('fs');
const path = require('path');

const sdkDir = path.join(__dirname, 'node_modules', '@daytonaio', 'sdk', 'cjs');
const { Image } = require(path.join(sdkDir, 'Image.js'));
const { ObjectStorage } = require(path.join(sdkDir, 'ObjectStorage.js'));

const [casesFile, caseName, caseDir] = process.argv.slice(2);
const cases = JSON.parse(fs.readFileSync(casesFile, 'utf8'));
const c = cases.find((x) => x.name === caseName);
if (!c) {
  console.error(`no case named ${caseName}`);
  process.exit(2);
}

// "@ROOT@" in any string argument stands for the case directory.
const subst = (v) => {
  if (typeof v === 'string') return v.split('@ROOT@').join(caseDir);
  if (Array.isArray(v)) return v.map(subst);
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = subst(x);
    return o;
  }
  return v;
};

const STATIC = new Set(['base', 'debianSlim', 'fromDockerfile']);

function errorOf(e) {
  return { name: e && e.constructor ? e.constructor.name : 'Error', message: String(e && e.message) };
}

async function archiveOf(storage, sourcePath, archivePath) {
  const chunks = [];
  storage.s3Client.send = async (cmd) => {
    const body = cmd.input && cmd.input.Body;
    if (body) {
      if (body instanceof Uint8Array) chunks.push(Buffer.from(body));
      else if (typeof body === 'string') chunks.push(Buffer.from(body));
      else for await (const chunk of body) chunks.push(Buffer.from(chunk));
    }
    return { ETag: '"etag"', UploadId: 'upload' };
  };
  // node-tar reports a path it cannot read as an 'error' event nobody listens to (the SDK
  // crashes); catch it here so the case records that archiving fails.
  let onCrash;
  const crashed = new Promise((_, reject) => {
    onCrash = reject;
    process.once('uncaughtException', onCrash);
  });
  try {
    await Promise.race([storage.uploadAsTar('key', sourcePath, archivePath), crashed]);
  } finally {
    process.removeListener('uncaughtException', onCrash);
  }
  return Buffer.concat(chunks);
}

(async () => {
  const out = {};
  let img = null;
  try {
    for (const op of c.ops) {
      const [method, ...rawArgs] = op;
      const args = subst(rawArgs);
      if (STATIC.has(method)) img = Image[method](...args);
      else img = img[method](...args);
    }
  } catch (e) {
    out.error = errorOf(e);
    process.stdout.write(JSON.stringify(out));
    return;
  }
  out.dockerfile = img.dockerfile;
  out.contextList = img.contextList.map((e) => ({ sourcePath: e.sourcePath, archivePath: e.archivePath }));
  out.entries = [];
  const storage = new ObjectStorage({
    endpointUrl: 'http://127.0.0.1:9', region: 'us-east-1', accessKeyId: 'a',
    secretAccessKey: 'b', sessionToken: 'c', bucketName: 'bucket',
  });
  for (const e of img.contextList) {
    // As ObjectStorage.upload: a missing path fails before hashing.
    if (!fs.existsSync(e.sourcePath)) {
      out.entries.push({ error: `Path does not exist: ${e.sourcePath}` });
      continue;
    }
    const hash = await storage.computeHashForPathMd5(e.sourcePath, e.archivePath);
    try {
      const tar = await archiveOf(storage, e.sourcePath, e.archivePath);
      out.entries.push({ hash, archive: tar.toString('base64') });
    } catch (err) {
      out.entries.push({ hash, archiveError: String(err && err.message) });
    }
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
