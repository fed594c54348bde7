<?php
// Verify a streamfleet push-handler request (docs/push-handlers.md). Copy this file into your app.
//
// The worker signs every request with TASK_SIGNING_SECRET:
//   X-Streamfleet-Timestamp: <unix seconds>
//   X-Streamfleet-Signature: v1=<lowercase hex HMAC-SHA256(secret, timestamp + "." + raw body)>
// Pass the raw request body (file_get_contents('php://input'), or $request->getContent() in Laravel), exactly
// as received: before any JSON decoding. No extensions beyond PHP's core hash; tested by
// examples/push-handlers/test_verify.sh.

// True when the signature is right and the timestamp is within $toleranceS of now (replay protection).
function streamfleet_verify(string $secret, ?string $timestampHeader, ?string $signatureHeader, ?string $rawBody,
                            ?int $now = null, int $toleranceS = 300): bool
{
    if ($secret === '' || $timestampHeader === null || $signatureHeader === null || $rawBody === null) {
        return false;
    }
    $ts = trim($timestampHeader);
    if (preg_match('/^[0-9]{1,12}$/', $ts) !== 1) {
        return false;
    }
    $now = $now ?? time();
    if (abs($now - (int) $ts) > $toleranceS) {
        return false;
    }
    $expected = 'v1=' . hash_hmac('sha256', $ts . '.' . $rawBody, $secret);
    return hash_equals($expected, trim($signatureHeader));
}
