<?php
declare(strict_types=1);

namespace Streamfleet;

/**
 * Signed live-stream links for browsers (docs/live.md, "Signed links"). An EventSource cannot send an
 * Authorization header and an organization's token must not reach a browser, so the app's backend signs the path of
 * one stream with an expiry and hands the page the link:
 *
 *   <path>?exp=<unix seconds>&sig=<lowercase hex HMAC-SHA256(org token, "GET\n" + path + "\n" + exp)>
 *
 * ingest accepts it for that path only, until exp (403 when expired or forged). In a Laravel controller:
 *
 *   $url = SignedStreamLink::generationStream(config('services.streamfleet.org_token'), $org, $gen,
 *       baseUrl: config('services.streamfleet.live_url'));
 *
 * Invalid arguments are \InvalidArgumentException. Nothing here talks to ingest.
 */
final class SignedStreamLink
{
    /** Seconds a link stays good unless told otherwise. */
    public const DEFAULT_TTL_SECONDS = 600;
    /** Ids as ingest parses them: 1 to 18 decimal digits, > 0. */
    private const ID = '[1-9][0-9]{0,17}';
    /** ingest refuses an exp of more than 12 digits as malformed (400). */
    private const MAX_EXP = 999999999999;

    private function __construct()
    {
    }

    /**
     * A link to one live stream that a browser may open without a token, good for $ttlSeconds.
     *
     * @param string                      $token      the organization's token (its INGEST_TOKENS entry); it signs
     *                                                the link and never leaves the backend
     * @param string                      $path       "/v1/orgs/{org}/generations/{gen}/stream" or
     *                                                "/v1/orgs/{org}/events", without a query
     * @param int                         $ttlSeconds seconds the link stays good (> 0, default 600)
     * @param string                      $baseUrl    put before the path: "" for a link relative to the page's origin,
     *                                                or "https://ingest.example.com" (a trailing "/" is dropped),
     *                                                optionally with a path prefix that a proxy strips before ingest
     * @param int|\DateTimeInterface|null $now        unix seconds (or a Carbon/DateTime) to count from; default time()
     * @return string "{$baseUrl}{$path}?exp=...&sig=..."; the page may append its own parameters (&from_seq=N,
     *                &after=0), which the signature does not cover
     */
    public static function make(
        string $token,
        string $path,
        int $ttlSeconds = self::DEFAULT_TTL_SECONDS,
        string $baseUrl = '',
        int|\DateTimeInterface|null $now = null,
    ): string {
        $id = self::ID;
        if (!preg_match("#^(/v1/orgs/$id/generations/$id/stream|/v1/orgs/$id/events)\\z#", $path)) {
            throw new \InvalidArgumentException('path must be /v1/orgs/{org}/generations/{gen}/stream or '
                . "/v1/orgs/{org}/events with positive integer ids of at most 18 digits and no query, got \"$path\"");
        }
        if ($ttlSeconds <= 0) {
            throw new \InvalidArgumentException("ttlSeconds must be a positive integer, got $ttlSeconds");
        }
        if (!preg_match('#^(https?://[^/?\#\s]+)?(/[^?\#\s]*)?\z#i', $baseUrl)) {
            throw new \InvalidArgumentException(
                "baseUrl must be \"\", http(s)://host[:port][/prefix] or /prefix, got \"$baseUrl\"");
        }
        $nowSeconds = $now instanceof \DateTimeInterface ? $now->getTimestamp() : ($now ?? time());
        if ($nowSeconds < 0 || $nowSeconds > self::MAX_EXP) {
            throw new \InvalidArgumentException("now must be unix seconds (not milliseconds), got $nowSeconds");
        }
        if ($ttlSeconds > self::MAX_EXP - $nowSeconds) {
            throw new \InvalidArgumentException(
                "ttlSeconds too large: the link would expire beyond what ingest accepts (12 digits)");
        }
        $exp = $nowSeconds + $ttlSeconds;
        return rtrim($baseUrl, '/') . $path . '?exp=' . $exp . '&sig=' . self::signature($token, $path, $exp);
    }

    /** A signed link to generation $gen's stream of organization $org (make()'s other arguments). */
    public static function generationStream(
        string $token,
        int|string $org,
        int|string $gen,
        int $ttlSeconds = self::DEFAULT_TTL_SECONDS,
        string $baseUrl = '',
        int|\DateTimeInterface|null $now = null,
    ): string {
        return self::make($token, self::generationStreamPath($org, $gen), $ttlSeconds, $baseUrl, $now);
    }

    /** A signed link to organization $org's events stream (make()'s other arguments). */
    public static function events(
        string $token,
        int|string $org,
        int $ttlSeconds = self::DEFAULT_TTL_SECONDS,
        string $baseUrl = '',
        int|\DateTimeInterface|null $now = null,
    ): string {
        return self::make($token, self::eventsPath($org), $ttlSeconds, $baseUrl, $now);
    }

    /** "/v1/orgs/{org}/generations/{gen}/stream"; ids are ints or their decimal digits ("42", as routes give them). */
    public static function generationStreamPath(int|string $org, int|string $gen): string
    {
        return '/v1/orgs/' . self::id('org', $org) . '/generations/' . self::id('gen', $gen) . '/stream';
    }

    /** "/v1/orgs/{org}/events". */
    public static function eventsPath(int|string $org): string
    {
        return '/v1/orgs/' . self::id('org', $org) . '/events';
    }

    /** Lowercase hex HMAC-SHA256($token, "GET\n" . $path . "\n" . $exp): the sig of a link to $path until $exp. */
    public static function signature(string $token, string $path, int $exp): string
    {
        if ($token === '') {
            throw new \InvalidArgumentException(
                "token must be the organization's ingest token (INGEST_TOKENS), not empty");
        }
        return hash_hmac('sha256', "GET\n{$path}\n{$exp}", $token);
    }

    private static function id(string $name, int|string $value): string
    {
        $text = (string) $value;
        if (!preg_match('#^' . self::ID . '\z#', $text)) {
            throw new \InvalidArgumentException(
                "$name must be a positive integer of at most 18 digits, got " . var_export($value, true));
        }
        return $text;
    }
}
