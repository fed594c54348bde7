#pragma once
// Test support: a real S3 API server for the object store's tests. s3rver (npm, pinned by
// tests/support/s3rver/package-lock.json, installed with `npm ci` into the build tree on first use) on a free
// loopback port, one bucket, its data in a temp directory. s3rver checks the access key ("S3RVER"), not the
// SigV4 signature itself (its v4 verification is unimplemented): signing is libcurl's CURLOPT_AWS_SIGV4.
#include <map>
#include <string>

namespace streamfleet::testing {

class S3Server {
 public:
  explicit S3Server(std::string bucket = "art");
  ~S3Server();
  S3Server(const S3Server&) = delete;
  S3Server& operator=(const S3Server&) = delete;

  // Kill, then Start again on the same port with the same data: the store going away mid-run.
  void Start();
  void Kill();
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // ARTIFACT_STORE=s3://<bucket>/<prefix> and the endpoint and credentials that reach this server.
  std::map<std::string, std::string> env(const std::string& prefix = "fleet-a") const;

 private:
  std::string bucket_;
  std::string dir_;
  int port_;
  int pid_ = -1;
};

}  // namespace streamfleet::testing
