<?php
// Without composer: `require '/path/to/clients/php/autoload.php';` loads every class of the client
// (composer users get the same classes through the PSR-4 autoload of composer.json).
declare(strict_types=1);

foreach ([
    'TaskApiException', 'ConnectionException', 'TaskNotFoundException', 'TaskTooLateException',
    'EnqueueResult', 'CancelResult', 'TaskClientInterface', 'TaskClient', 'SignedStreamLink',
] as $class) {
    require_once __DIR__ . '/src/' . $class . '.php';
}
