#pragma once
// The live routes of the ingest API (docs/live.md): GET /v1/orgs/{org}/generations/{gen}/stream and
// GET /v1/orgs/{org}/events, server-sent events served by a LiveHub (components/live). The handler checks
// the request (authorization and route checks happened in IngestService::Admit), answers the head and
// hands the connection to the hub: no worker thread waits for a stream.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/registry.h>

#include "ingest/org_share.h"
#include "streamfleet/base/config.h"
#include "streamfleet/http/http_exchange.h"
#include "streamfleet/live/live_hub.h"
#include "streamfleet/redis/redis.h"
#include "streamfleet/sql/sql_store.h"

namespace streamfleet::ingest {

class LiveRoutes {
 public:
  // redis: the request path's connection (the owner check). store: compacted rows (nullptr: none).
  LiveRoutes(const Config& config, RedisCommands& redis, SqlStore* store, prometheus::Registry& registry);

  // The CORS headers every answer of the live routes carries (200, 204 and every error: a browser shows a
  // page no answer, not even its status, without them) when the request's Origin is in LIVE_CORS_ORIGINS;
  // none otherwise. The caller adds them to the exchange before anything answers it.
  std::vector<std::pair<std::string, std::string>> CorsHeaders(const HttpExchange& ex) const;
  // OPTIONS on a live route: the CORS preflight of a fetch-based client (one that sends Authorization or
  // Last-Event-ID). 204 with the Access-Control-Allow-* headers for an allowed origin; 403 origin_not_allowed
  // (no Access-Control-* headers) otherwise, so that whoever reads the answer sees why the browser refused.
  void HandlePreflight(HttpExchange& ex);
  void HandleGenerationStream(HttpExchange& ex, int64_t org, int64_t gen);
  void HandleEvents(HttpExchange& ex, int64_t org);
  // Ends every stream (clients reconnect to another replica). Before the HTTP server stops.
  void Stop() { hub_.Stop(); }

 private:
  // The stream's head, once the organization's share of streams has room; nullptr when it was answered
  // otherwise (429, 501). *hold: the organization's slot, for the hub to keep as long as the stream.
  std::shared_ptr<HttpStream> Open(HttpExchange& ex, int64_t org, std::shared_ptr<void>* hold);

  const Config& config_;
  RedisCommands& redis_;
  OrgShare streams_;  // LIVE_ORG_MAX_STREAMS; before hub_, which holds its slots
  live::LiveHub hub_;
};

}  // namespace streamfleet::ingest
