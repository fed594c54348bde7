'use strict';
// Verify a streamfleet push-handler request (docs/push-handlers.md). Copy this file into your app.
//
// The worker signs every request with TASK_SIGNING_SECRET:
//   X-Streamfleet-Timestamp: <unix seconds>
//   X-Streamfleet-Signature: v1=<lowercase hex HMAC-SHA256(secret, timestamp + "." + raw body)>
// Pass the raw request body (a Buffer, exactly as received: before any JSON parsing).
// Node's crypto only; tested by examples/push-handlers/test_verify.sh.
const crypto = require('crypto');

// True when the signature is right and the timestamp is within toleranceS of now (replay protection).
// now is in unix seconds (defaults to the clock).
function verify(secret, timestampHeader, signatureHeader, rawBody, now = undefined, toleranceS = 300) {
  if (!secret || !timestampHeader || !signatureHeader || rawBody == null) return false;
  const ts = String(timestampHeader).trim();
  if (!/^[0-9]{1,12}$/.test(ts)) return false;
  const nowS = now === undefined || now === null ? Date.now() / 1000 : now;
  if (Math.abs(nowS - Number(ts)) > toleranceS) return false;
  const body = Buffer.isBuffer(rawBody) ? rawBody : Buffer.from(rawBody, 'utf8');
  const mac = crypto.createHmac('sha256', secret);
  mac.update(ts + '.');
  mac.update(body);
  const expected = Buffer.from('v1=' + mac.digest('hex'), 'utf8');
  const given = Buffer.from(String(signatureHeader).trim(), 'utf8');
  // timingSafeEqual throws on different lengths; the length of a right signature is no secret.
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

module.exports = { verify };
