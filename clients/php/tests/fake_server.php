<?php
// Router for `php -S` (tests/clients/php_client_test.sh): answers the client what a real ingest never does, or
// what is awkward to provoke, and records every request it gets. The first path segment picks the answer; the
// client under test uses it as its base URL's prefix (http://127.0.0.1:PORT/echo -> /echo/v1/tasks):
//   /echo      202/200 task answers, like ingest
//   /proxy502  502 with an HTML page (a proxy in front of ingest)
//   /busy      503 redis_unavailable with Retry-After as an HTTP date two minutes ahead
//   /missing   404 with an HTML page (a wrong prefix: not a missing task)
//   /notjson   200 with plain text
//   /slow      answers after 1 s
//   /healthz   200, for the script's wait_http
// Each request is appended to $STREAMFLEET_FAKE_LOG as one JSON line: method, uri, headers, body.
declare(strict_types=1);

$uri = $_SERVER['REQUEST_URI'];
$method = $_SERVER['REQUEST_METHOD'];
$body = file_get_contents('php://input');
$log = getenv('STREAMFLEET_FAKE_LOG');
if ($log !== false && $log !== '') {
    $line = json_encode(['method' => $method, 'uri' => $uri, 'headers' => getallheaders(), 'body' => $body],
        JSON_UNESCAPED_SLASHES);
    file_put_contents($log, $line . "\n", FILE_APPEND | LOCK_EX);
}

function answer(int $status, string $body, string $type = 'application/json', array $headers = []): void
{
    http_response_code($status);
    header("Content-Type: $type");
    foreach ($headers as $h) {
        header($h);
    }
    echo $body;
}

$scenario = explode('/', ltrim($uri, '/'))[0];
switch ($scenario) {
    case 'healthz':
        answer(200, 'ok', 'text/plain');
        break;
    case 'echo':
        if ($method === 'POST' && str_ends_with($uri, '/v1/tasks:batch')) {
            $n = count(json_decode($body, true)['tasks'] ?? []);
            $tasks = [];
            for ($i = 0; $i < $n; $i++) {
                $tasks[] = ['task_id' => "fake-$i", 'state' => 'pending'];
            }
            answer(202, json_encode(['tasks' => $tasks]));
        } elseif ($method === 'POST') {
            answer(202, json_encode(['task_id' => 'fake-1', 'state' => 'pending']));
        } elseif ($method === 'DELETE') {
            answer(200, json_encode(['task_id' => 'fake-1', 'state' => 'cancelled', 'previous_state' => 'pending']));
        } else {
            answer(200, json_encode(['task_id' => 'fake-1', 'state' => 'pending', 'attempts' => 0]));
        }
        break;
    case 'proxy502':
        answer(502, "<html><body><h1>502 Bad Gateway</h1></body></html>\n", 'text/html');
        break;
    case 'busy':
        answer(503, json_encode(['error' => 'redis_unavailable', 'detail' => 'redis connection lost']),
            'application/json', ['Retry-After: ' . gmdate('D, d M Y H:i:s', time() + 120) . ' GMT']);
        break;
    case 'missing':
        answer(404, "<html><body>Not Found</body></html>\n", 'text/html');
        break;
    case 'notjson':
        answer(200, "ok\n", 'text/plain');
        break;
    case 'slow':
        usleep(1000000);
        answer(202, json_encode(['task_id' => 'slow-1', 'state' => 'pending']));
        break;
    default:
        answer(500, "no scenario \"$scenario\"\n", 'text/plain');
}
