#pragma once
// The UI's static files (admin/web/*), embedded into the binary at build time by embed_assets.cmake, so
// the admin process needs nothing on disk at run time.
#include <string_view>

namespace streamfleet::admin {

struct WebAsset {
  std::string_view name;          // file name under admin/web, e.g. "app.js"
  std::string_view content_type;
  std::string_view body;
};

// nullptr when there is no such file.
const WebAsset* FindWebAsset(std::string_view name);

}  // namespace streamfleet::admin
