'use strict';
// streamfleet.v1.TaskEnvelope from task_envelope.json: protobufjs's reflection of proto/streamfleet/v1/task.proto,
// checked in so that nothing parses .proto files at run time (test/keys.test.js fails when it is stale).
const protobuf = require('protobufjs');
const descriptor = require('./task_envelope.json');

const TaskEnvelope = protobuf.Root.fromJSON(descriptor).lookupType('streamfleet.v1.TaskEnvelope');

// Serializes an envelope. Fields at their proto3 default are left out, as the C++ encoder leaves them out,
// so the bytes are the same as a C++ producer's for the same task.
function encodeEnvelope(fields) {
  const set = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === null || v === 0 || v === '' || (Buffer.isBuffer(v) && v.length === 0)) continue;
    set[k] = v;
  }
  return Buffer.from(TaskEnvelope.encode(TaskEnvelope.fromObject(set)).finish());
}

function decodeEnvelope(bytes) {
  return TaskEnvelope.toObject(TaskEnvelope.decode(bytes), { longs: Number, defaults: true });
}

module.exports = { TaskEnvelope, decodeEnvelope, encodeEnvelope };
