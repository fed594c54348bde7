#pragma once
// Test support: an in-process ingest (ingest_lib) on a free loopback port, configured from a map environment
// over a given redis-server, plus the few HTTP helpers the bad-input and security suites share.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "ingest/ingest_service.h"
#include "support/http_client.h"
#include "support/map_env.h"

namespace streamfleet::testing {

class IngestHarness {
 public:
  IngestHarness(int redis_port, std::map<std::string, std::string> extra = {}, SqlStore* store = nullptr) {
    std::map<std::string, std::string> env = {{"REDIS_PORT", std::to_string(redis_port)},
                                              {"INGEST_LISTEN", "127.0.0.1:0"},
                                              {"CHUNK_STREAMS", "1"},
                                              {"INGEST_THREADS", "8"},
                                              {"REDIS_TIMEOUT", "1s"}};
    for (auto& [k, v] : extra) env[k] = v;
    auto c = LoadConfig(MapEnv(env), "127.0.0.1:0");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    config_ = std::make_unique<Config>(*c);
    service_ = std::make_unique<ingest::IngestService>(*config_, registry_, store);
    Status s = service_->Start();
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ~IngestHarness() { service_->Stop(); }

  int port() const { return service_->port(); }
  ingest::IngestService& service() { return *service_; }
  const Config& config() const { return *config_; }
  prometheus::Registry& registry() { return registry_; }
  std::string Url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port()) + path; }

  HttpResponse Post(const std::string& path, const std::string& body, const std::string& type = "application/json",
                    std::vector<std::string> headers = {}) const {
    HttpRequest r;
    r.method = "POST";
    r.url = Url(path);
    r.body = body;
    headers.push_back("Content-Type: " + type);
    r.headers = std::move(headers);
    return Send(r);
  }
  HttpResponse Get(const std::string& path, std::vector<std::string> headers = {}) const {
    HttpRequest r;
    r.url = Url(path);
    r.headers = std::move(headers);
    return Send(r);
  }

 private:
  std::unique_ptr<Config> config_;
  prometheus::Registry registry_;
  std::unique_ptr<ingest::IngestService> service_;
};

}  // namespace streamfleet::testing
