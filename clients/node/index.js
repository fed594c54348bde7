'use strict';
// streamfleet-client: enqueue streamfleet tasks from Node.js, follow and cancel them (docs/task-protocol.md).
const {
  CANCEL_MARKER_TTL_MS, CANCEL_SCRIPT, DEFAULT_STATUS_TTL_S, DEFAULT_UNIQUE_FOR_S, TaskClient,
} = require('./lib/client');
const { CONSUMER_GROUP, TaskKeys, crc16, validQueueName } = require('./lib/keys');
const { keysFromEnv } = require('./lib/config');
const { TaskEnvelope, decodeEnvelope } = require('./lib/envelope');

module.exports = {
  CANCEL_MARKER_TTL_MS, CANCEL_SCRIPT, CONSUMER_GROUP, DEFAULT_STATUS_TTL_S, DEFAULT_UNIQUE_FOR_S, TaskClient,
  TaskEnvelope, TaskKeys, crc16, decodeEnvelope, keysFromEnv, validQueueName,
};
