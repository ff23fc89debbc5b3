// Prints shell-quote's quote([s]) and parse(s) for `count` pseudo-random strings (seeded), as
// the SDK's installed shell-quote computes them, for tests/image/shell_words_test.cc:
//
//   node shell_quote_parity.js <seed> <count>
//
// Output: a JSON array of {input, quoted, words: [{text, glob}] | null (parse threw)}; parse
// operators are dropped and a comment ends the words, as in the SDK's COPY parsing.
'use strict';
const path = require('path');
const shellQuote = require(path.join(__dirname, 'node_modules', 'shell-quote'));

let state = Number(process.argv[2] || 1) >>> 0;
const count = Number(process.argv[3] || 100);
function random() {  // mulberry32
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const alphabet = ['a', 'b', 'Z', '0', '9', '_', '-', '.', '/', ' ', ' ', '\t', "'", "'", '"', '"',
  '\\', '\\', '$', '$', '{', '}', '*', '?', '[', ']', '#', ';', '|', '&', '<', '>', '(', ')', '!',
  '~', ':', '=', '@', ',', '%', '+', '^', '`', '\u00e9', '\ud83d\ude00', '\u00a0', '\n', 'x:', 'C:'];

const out = [];
for (let i = 0; i < count; i++) {
  const len = Math.floor(random() * 16);
  let s = '';
  for (let k = 0; k < len; k++) s += alphabet[Math.floor(random() * alphabet.length)];
  let words = [];
  try {
    for (const w of shellQuote.parse(s)) {
      if (typeof w === 'string') words.push({ text: w, glob: false });
      else if (w.op === 'glob') words.push({ text: w.pattern, glob: true });
      else if ('comment' in w) break;
    }
  } catch (e) {
    words = null;
  }
  out.push({ input: s, quoted: shellQuote.quote([s]), words });
}
process.stdout.write(JSON.stringify(out));
