// Drives Cairn's S3-compatible endpoint with the real AWS SDK for JavaScript v3 (the
// @aws-sdk/client-s3 and @aws-sdk/lib-storage that @daytonaio/sdk@0.218.0 brings along), the
// way the Daytona SDK uses it: path-style, CRC32 checksums, ListObjectsV2 existence checks,
// and lib-storage multipart for bodies over 5 MiB.
//
// Environment: S3_ENDPOINT, S3_REGION, S3_BUCKET, S3_ORG, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, NODE_MODULES (tests/node/node_modules).
// Prints one line "OK <summary>" and exits 0, or prints the failure and exits 1.
'use strict';

const path = require('path');
const crypto = require('crypto');
const { Readable } = require('stream');

const modules = process.env.NODE_MODULES;
const s3 = require(path.join(modules, '@aws-sdk/client-s3'));
const { Upload } = require(path.join(modules, '@aws-sdk/lib-storage'));

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`missing environment variable ${name}`);
  return v;
};

function client(overrides = {}) {
  return new s3.S3Client({
    endpoint: env('S3_ENDPOINT'),
    region: env('S3_REGION'),
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: {
      accessKeyId: env('AWS_ACCESS_KEY_ID'),
      secretAccessKey: env('AWS_SECRET_ACCESS_KEY'),
      sessionToken: env('AWS_SESSION_TOKEN'),
      ...overrides,
    },
  });
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

async function expectError(promise, name) {
  try {
    await promise;
  } catch (e) {
    // HEAD errors have no body, so the SDK only knows the status code.
    const status = e.$metadata && String(e.$metadata.httpStatusCode);
    check(e.name === name || e.Code === name || status === name,
          `expected ${name}, got ${e.name} (${status}): ${e.message}`);
    return;
  }
  throw new Error(`expected ${name}, but the call succeeded`);
}

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

async function main() {
  const c = client();
  const bucket = env('S3_BUCKET');
  const org = env('S3_ORG');
  const done = [];

  // Small object: PutObject with the CRC32 checksum headers SDK 0.218 always sends.
  const small = Buffer.from('hello from the aws sdk\n'.repeat(100));
  const smallKey = `${org}/0123456789abcdef/context.tar`;
  const put = await c.send(new s3.PutObjectCommand({
    Bucket: bucket, Key: smallKey, Body: small, ContentType: 'application/octet-stream',
    ChecksumAlgorithm: 'CRC32',
  }));
  check(put.ETag === `"${crypto.createHash('md5').update(small).digest('hex')}"`, `ETag ${put.ETag}`);
  check(typeof put.ChecksumCRC32 === 'string', 'PutObject echoes ChecksumCRC32');
  done.push('PutObject');

  // The SDK's existence check.
  const list = await c.send(new s3.ListObjectsV2Command({
    Bucket: bucket, Prefix: `${org}/0123456789abcdef/`, MaxKeys: 1,
  }));
  check(list.KeyCount === 1 && list.Contents && list.Contents[0].Key === smallKey,
        `ListObjectsV2 ${JSON.stringify(list.Contents)}`);
  const none = await c.send(new s3.ListObjectsV2Command({
    Bucket: bucket, Prefix: `${org}/ffffffffffffffff/`, MaxKeys: 1,
  }));
  check(!none.Contents || none.Contents.length === 0, 'empty ListObjectsV2');
  done.push('ListObjectsV2');

  const head = await c.send(new s3.HeadObjectCommand({ Bucket: bucket, Key: smallKey }));
  check(head.ContentLength === small.length, `HeadObject ContentLength ${head.ContentLength}`);
  done.push('HeadObject');

  const got = await c.send(new s3.GetObjectCommand({ Bucket: bucket, Key: smallKey }));
  const gotBytes = Buffer.from(await got.Body.transformToByteArray());
  check(gotBytes.equals(small), 'GetObject body');
  done.push('GetObject');

  // > 5 MiB through lib-storage, from a stream like the Daytona SDK's tar stream: multipart
  // with 5 MiB parts, up to 4 in flight.
  const big = crypto.randomBytes(12 * 1024 * 1024 + 12345);
  const bigKey = `${org}/fedcba9876543210/context.tar`;
  const chunks = [];
  for (let i = 0; i < big.length; i += 64 * 1024) chunks.push(big.subarray(i, i + 64 * 1024));
  const upload = new Upload({
    client: c,
    params: { Bucket: bucket, Key: bigKey, Body: Readable.from(chunks) },
    queueSize: 4,
    partSize: 5 * 1024 * 1024,
  });
  const up = await upload.done();
  check(/-3"$/.test(up.ETag || ''), `multipart ETag ${up.ETag}`);
  const bigGot = await c.send(new s3.GetObjectCommand({ Bucket: bucket, Key: bigKey }));
  const bigBytes = Buffer.from(await bigGot.Body.transformToByteArray());
  check(sha(bigBytes) === sha(big), 'multipart object content');
  done.push('Upload(multipart)');

  // What must be refused.
  await expectError(c.send(new s3.PutObjectCommand({
    Bucket: bucket, Key: `other-org/x/context.tar`, Body: small, ChecksumAlgorithm: 'CRC32',
  })), 'AccessDenied');
  await expectError(c.send(new s3.ListObjectsV2Command({ Bucket: bucket, Prefix: 'other-org/' })),
                    'AccessDenied');
  await expectError(client({ secretAccessKey: 'wrong' }).send(
    new s3.HeadObjectCommand({ Bucket: bucket, Key: smallKey })), '403');
  await expectError(client({ secretAccessKey: 'wrong' }).send(
    new s3.GetObjectCommand({ Bucket: bucket, Key: smallKey })), 'SignatureDoesNotMatch');
  await expectError(c.send(new s3.GetObjectCommand({ Bucket: bucket, Key: `${org}/missing` })),
                    'NoSuchKey');
  done.push('refusals');

  console.log(`OK ${done.join(' ')}`);
}

main().catch((e) => {
  console.log(`FAIL ${e.name}: ${e.message}`);
  process.exit(1);
});
