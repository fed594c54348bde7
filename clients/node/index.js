'use strict';
// streamfleet-client: enqueue streamfleet tasks from Node.js, follow and cancel them (docs/task-protocol.md); signed
// live-stream links for browsers (docs/live.md).
const {
  CANCEL_MARKER_TTL_MS, CANCEL_RECORD_SCRIPT, CANCEL_RECORD_SCRIPT_SHA1, CANCEL_SCRIPT, DEFAULT_STATUS_TTL_S,
  DEFAULT_UNIQUE_FOR_S, ENQUEUE_SCRIPT, ENQUEUE_SCRIPT_SHA1, EnqueueManyError, TaskClient,
} = require('./lib/client');
const { CONSUMER_GROUP, TaskKeys, crc16, validQueueName } = require('./lib/keys');
const { keysFromEnv, redisFromEnv } = require('./lib/config');
const { TaskEnvelope, decodeEnvelope } = require('./lib/envelope');
const {
  DEFAULT_LINK_TTL_S, eventsPath, generationStreamPath, signedEventsLink, signedGenerationStreamLink, signedStreamLink,
  streamLinkSignature,
} = require('./lib/live');

module.exports = {
  CANCEL_MARKER_TTL_MS, CANCEL_RECORD_SCRIPT, CANCEL_RECORD_SCRIPT_SHA1, CANCEL_SCRIPT, CONSUMER_GROUP,
  DEFAULT_LINK_TTL_S, DEFAULT_STATUS_TTL_S, DEFAULT_UNIQUE_FOR_S, ENQUEUE_SCRIPT, ENQUEUE_SCRIPT_SHA1, EnqueueManyError,
  TaskClient, TaskEnvelope, TaskKeys, crc16, decodeEnvelope, eventsPath, generationStreamPath, keysFromEnv,
  redisFromEnv, signedEventsLink, signedGenerationStreamLink, signedStreamLink, streamLinkSignature, validQueueName,
};
