'use strict';
// Signed live-stream links for browsers (docs/live.md, "Signed links"). An EventSource cannot send an
// Authorization header and an organization's token must not reach a browser, so the app's backend signs the path
// of one stream with an expiry and hands the page the link:
//   <path>?exp=<unix seconds>&sig=<lowercase hex HMAC-SHA256(org token, "GET\n" + path + "\n" + exp)>
// ingest (components/live signed_link.cc) accepts it for that path only, until exp; 403 when expired or forged.
const { createHmac } = require('node:crypto');

const DEFAULT_LINK_TTL_S = 600;
// Ids as ingest parses them (ParseId in components/chunks request_parsing.cc): 1 to 18 decimal digits, > 0.
const MAX_ID = 999999999999999999n;
// ingest refuses an exp of more than 12 digits as malformed (400).
const MAX_EXP = 999999999999;

const ID = '[1-9][0-9]{0,17}';
const STREAM_PATH = new RegExp(`^(?:/v1/orgs/${ID}/generations/${ID}/stream|/v1/orgs/${ID}/events)$`);
const BASE_URL = /^(?:https?:\/\/[^/?#\s]+)?(?:\/[^?#\s]*)?$/i;

// A positive integer id (a safe integer Number, a BigInt, or its decimal digits as a string) as it goes into the
// path. pg returns BIGINT columns as strings, and ids beyond 2^53 only survive as strings or BigInts.
function checkId(name, value) {
  let n = null;
  if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === 'bigint') n = value;
  else if (typeof value === 'string' && new RegExp(`^${ID}$`).test(value)) n = BigInt(value);
  if (n === null || n <= 0n || n > MAX_ID) {
    throw new TypeError(`${name} must be a positive integer of at most 18 digits (a safe integer, BigInt or decimal ` +
      `string), got ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`);
  }
  return n.toString();
}

/** `/v1/orgs/{org}/generations/{gen}/stream`; throws unless both are positive integers. */
function generationStreamPath(org, gen) {
  return `/v1/orgs/${checkId('org', org)}/generations/${checkId('gen', gen)}/stream`;
}

/** `/v1/orgs/{org}/events`; throws unless org is a positive integer. */
function eventsPath(org) {
  return `/v1/orgs/${checkId('org', org)}/events`;
}

/** Lowercase hex HMAC-SHA256(token, "GET\n" + path + "\n" + exp): the sig of a link to path until exp. */
function streamLinkSignature(token, path, exp) {
  if (typeof token !== 'string' || token === '') {
    throw new TypeError("token must be the organization's ingest token (INGEST_TOKENS), a non-empty string");
  }
  return createHmac('sha256', token).update(`GET\n${path}\n${exp}`).digest('hex');
}

// options.now: a Date or unix seconds (not milliseconds); default now.
function nowSeconds(now) {
  if (now === undefined || now === null) return Math.floor(Date.now() / 1000);
  const s = now instanceof Date ? now.getTime() / 1000 : now;
  if (typeof s !== 'number' || !(s >= 0 && s <= MAX_EXP)) {
    throw new TypeError(`now must be a Date or unix seconds (not milliseconds), got ${String(now)}`);
  }
  return Math.floor(s);
}

/**
 * A link to one live stream that a browser may open without a token, good for options.ttlS seconds.
 *   token: the organization's token (its INGEST_TOKENS entry); it signs the link and never leaves the backend.
 *   path: /v1/orgs/{org}/generations/{gen}/stream or /v1/orgs/{org}/events, without a query.
 *   options.ttlS: seconds the link stays good, a positive integer (default 600).
 *   options.baseUrl: put before the path: '' (default) for a link relative to the page's origin, or
 *     'https://ingest.example.com' (a trailing '/' is dropped), optionally with a path prefix a proxy strips.
 *   options.now: a Date or unix seconds to count from (default now).
 * Returns `${baseUrl}${path}?exp=...&sig=...`; the page may append its own parameters (&from_seq=N, &after=0).
 * Throws a TypeError for invalid arguments.
 */
function signedStreamLink(token, path, options = {}) {
  const { ttlS = DEFAULT_LINK_TTL_S, baseUrl = '', now } = options;
  if (typeof path !== 'string' || !STREAM_PATH.test(path)) {
    throw new TypeError('path must be /v1/orgs/{org}/generations/{gen}/stream or /v1/orgs/{org}/events with ' +
      `positive integer ids of at most 18 digits and no query, got ${JSON.stringify(path)}`);
  }
  if (!Number.isSafeInteger(ttlS) || ttlS <= 0) {
    throw new TypeError(`ttlS must be a positive integer (seconds), got ${String(ttlS)}`);
  }
  if (typeof baseUrl !== 'string' || !BASE_URL.test(baseUrl)) {
    throw new TypeError("baseUrl must be '', http(s)://host[:port][/prefix] or /prefix, got " +
      JSON.stringify(baseUrl));
  }
  const exp = nowSeconds(now) + ttlS;
  if (exp > MAX_EXP) {
    throw new TypeError(`ttlS too large: the link would expire at ${exp}, beyond what ingest accepts (12 digits)`);
  }
  return `${baseUrl.replace(/\/+$/, '')}${path}?exp=${exp}&sig=${streamLinkSignature(token, path, exp)}`;
}

/** A signed link to generation gen's stream of organization org (signedStreamLink's options). */
function signedGenerationStreamLink(token, org, gen, options = {}) {
  return signedStreamLink(token, generationStreamPath(org, gen), options);
}

/** A signed link to organization org's events stream (signedStreamLink's options). */
function signedEventsLink(token, org, options = {}) {
  return signedStreamLink(token, eventsPath(org), options);
}

module.exports = {
  DEFAULT_LINK_TTL_S, eventsPath, generationStreamPath, signedEventsLink, signedGenerationStreamLink,
  signedStreamLink, streamLinkSignature,
};
