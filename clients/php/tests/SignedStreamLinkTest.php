<?php
// Signed live-stream links (Streamfleet\SignedStreamLink): the signature against a known vector and the argument
// checks without servers; then links made here against the real streamfleet-ingest that
// tests/clients/php_client_test.sh starts, which passes it in the environment:
//   STREAMFLEET_TEST_URL          ingest
//   STREAMFLEET_TEST_INGEST_ORG   an organization of its INGEST_TOKENS
//   STREAMFLEET_TEST_INGEST_TOKEN that organization's token
declare(strict_types=1);

require_once __DIR__ . '/../autoload.php';

use PHPUnit\Framework\TestCase;
use Streamfleet\SignedStreamLink;

final class SignedStreamLinkTest extends TestCase
{
    private const VECTOR_SIG = 'cbb3e6d4743bb856e33e0362fe2215e154581b7c710a47be4330837e9dee3358';

    private static function env(string $name): string
    {
        $v = getenv($name);
        if ($v === false || $v === '') {
            self::fail("$name is not set: run tests/clients/php_client_test.sh BUILD_DIR");
        }
        return $v;
    }

    /** Calls $fn, which must throw an \InvalidArgumentException whose message matches $pattern. */
    private static function assertInvalid(string $pattern, callable $fn, string $case): void
    {
        try {
            $fn();
        } catch (\InvalidArgumentException $e) {
            self::assertMatchesRegularExpression($pattern, $e->getMessage(), $case);
            return;
        }
        self::fail("$case: no InvalidArgumentException was thrown");
    }

    /**
     * GETs $url without an Authorization header (an EventSource cannot send one): [status, Content-Type, the start of
     * the body], reading at most "retry: 1000" of an event stream before closing the connection.
     */
    private static function get(string $url): array
    {
        $body = '';
        $ch = curl_init($url);
        curl_setopt_array($ch, [
            CURLOPT_TIMEOUT => 10,
            CURLOPT_WRITEFUNCTION => static function ($ch, string $data) use (&$body): int {
                $body .= $data;
                // Returning less than was given aborts the transfer (CURLE_WRITE_ERROR): enough of a stream.
                return curl_getinfo($ch, CURLINFO_RESPONSE_CODE) === 200 && strlen($body) >= 11 ? 0 : strlen($data);
            },
        ]);
        $ok = curl_exec($ch);
        $errno = curl_errno($ch);
        $status = curl_getinfo($ch, CURLINFO_RESPONSE_CODE);
        $type = (string) curl_getinfo($ch, CURLINFO_CONTENT_TYPE);
        curl_close($ch);
        self::assertTrue($ok || $errno === CURLE_WRITE_ERROR, "GET $url: curl error $errno");
        return [$status, $type, $body];
    }

    public function testKnownVector(): void
    {
        // HMAC-SHA256("tok-org-1", "GET\n/v1/orgs/1/generations/7/stream\n1800000000"), as ingest computes it.
        $path = '/v1/orgs/1/generations/7/stream';
        self::assertSame(self::VECTOR_SIG, SignedStreamLink::signature('tok-org-1', $path, 1800000000));
        $want = "$path?exp=1800000000&sig=" . self::VECTOR_SIG;
        self::assertSame($want, SignedStreamLink::make('tok-org-1', $path, 600, '', 1799999400));
        // 600 s by default
        self::assertSame($want, SignedStreamLink::generationStream('tok-org-1', 1, 7, now: 1799999400));
        self::assertSame($want, SignedStreamLink::generationStream('tok-org-1', '1', '7', 1,
            now: new \DateTimeImmutable('@1799999999')));
        self::assertSame("https://in.example/sf$want",
            SignedStreamLink::generationStream('tok-org-1', 1, 7, baseUrl: 'https://in.example/sf/', now: 1799999400));
    }

    public function testEventsLinkAndExpiry(): void
    {
        self::assertSame('http://127.0.0.1:8080/v1/orgs/42/events?exp=1060&sig='
            . SignedStreamLink::signature('t', '/v1/orgs/42/events', 1060),
            SignedStreamLink::events('t', 42, 60, 'http://127.0.0.1:8080', 1000));
        $before = time();
        parse_str((string) parse_url(SignedStreamLink::events('t', 1, 30), PHP_URL_QUERY), $q);
        self::assertGreaterThanOrEqual($before + 30, (int) $q['exp']);
        self::assertLessThanOrEqual(time() + 30, (int) $q['exp']);
        self::assertSame('/v1/orgs/999999999999999999/generations/999999999999999999/stream',
            SignedStreamLink::generationStreamPath('999999999999999999', 999999999999999999));
    }

    public function testInvalidArguments(): void
    {
        foreach ([0, -1, 1000000000000000000, '', '0', '01', '+1', ' 1', '1 ', '1x', '1e3'] as $bad) {
            $case = var_export($bad, true);
            self::assertInvalid('/^org must be a positive integer/',
                fn () => SignedStreamLink::events('t', $bad), $case);
            self::assertInvalid('/^gen must be a positive integer/',
                fn () => SignedStreamLink::generationStream('t', 1, $bad), $case);
        }
        foreach ([0, -5] as $ttl) {
            self::assertInvalid('/^ttlSeconds must be a positive integer/',
                fn () => SignedStreamLink::events('t', 1, $ttl), "ttl $ttl");
        }
        self::assertInvalid('/^ttlSeconds too large/', fn () => SignedStreamLink::events('t', 1, 1000000000000), 'ttl');
        self::assertInvalid('/^token must be/', fn () => SignedStreamLink::events('', 1), 'empty token');
        foreach (['/v1/orgs/1/events?after=0', 'v1/orgs/1/events', '/v1/orgs/0/events', '/v1/orgs/1/generations/7',
            '/v1/orgs/1/generations/7/chunks', 'http://h/v1/orgs/1/events', '/v1/orgs/1/events/',
            "/v1/orgs/1/events\n"] as $path) {
            self::assertInvalid('/^path must be/', fn () => SignedStreamLink::make('t', $path), $path);
        }
        foreach (['ingest:8080', 'http://h/x?y=1', 'ftp://h', 'http://h/#x'] as $base) {
            self::assertInvalid('/^baseUrl must be/', fn () => SignedStreamLink::events('t', 1, baseUrl: $base), $base);
        }
        foreach ([(int) (microtime(true) * 1000), -1] as $now) {
            self::assertInvalid('/^now must be unix seconds/', fn () => SignedStreamLink::events('t', 1, now: $now),
                "now $now");
        }
    }

    public function testLinksOpenStreamsOfARealIngest(): void
    {
        $url = self::env('STREAMFLEET_TEST_URL');
        $org = self::env('STREAMFLEET_TEST_INGEST_ORG');
        $token = self::env('STREAMFLEET_TEST_INGEST_TOKEN');
        // One chunk with the bearer token (the producer's side), so the generation's stream has begun.
        $gen = 700000 + (int) (microtime(true) * 1000) % 100000;
        $ch = curl_init("$url/v1/orgs/$org/generations/$gen/chunks");
        curl_setopt_array($ch, [
            CURLOPT_POST => true, CURLOPT_POSTFIELDS => '{"seq":0,"data":"hello"}', CURLOPT_RETURNTRANSFER => true,
            CURLOPT_TIMEOUT => 10,
            CURLOPT_HTTPHEADER => ["Authorization: Bearer $token", 'Content-Type: application/json'],
        ]);
        $answer = curl_exec($ch);
        self::assertSame(202, curl_getinfo($ch, CURLINFO_RESPONSE_CODE), (string) $answer);
        curl_close($ch);

        $link = SignedStreamLink::generationStream($token, $org, $gen, 60, "$url/");
        [$status, $type, $body] = self::get($link);
        self::assertSame(200, $status, "$link: $body");
        self::assertStringStartsWith('text/event-stream', $type);
        self::assertStringStartsWith('retry: 1000', $body);

        // The same signature on another generation's path: 403.
        [$status, , $body] = self::get($url . SignedStreamLink::generationStreamPath($org, $gen + 1)
            . substr($link, strpos($link, '?')));
        self::assertSame(403, $status, $body);
        self::assertSame('forbidden', json_decode($body, true)['error']);
        // Expired: 403.
        [$status, , $body] = self::get(SignedStreamLink::generationStream($token, $org, $gen, 60, $url, time() - 120));
        self::assertSame(403, $status, $body);
        self::assertStringContainsString('expired', json_decode($body, true)['detail']);
        // Signed with a token that is not the organization's: 403.
        [$status] = self::get(SignedStreamLink::generationStream($token . 'x', $org, $gen, baseUrl: $url));
        self::assertSame(403, $status);

        // The events stream; the page may add its own parameters, which are not signed.
        [$status, $type, $body] = self::get(SignedStreamLink::events($token, $org, 60, $url) . '&after=0');
        self::assertSame(200, $status, $body);
        self::assertStringStartsWith('text/event-stream', $type);
        self::assertStringStartsWith('retry: 1000', $body);
    }
}
