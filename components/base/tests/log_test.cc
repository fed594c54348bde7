// The log line formats: JSON lines must parse back whatever the message holds; ids come from LogScope.
#include "streamfleet/base/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <nlohmann/json.hpp>
#include <sstream>

namespace streamfleet {
namespace {

class LogFormatTest : public ::testing::Test {
 protected:
  std::vector<std::string> Emit(bool json, const std::function<void(spdlog::logger&)>& body) {
    std::ostringstream out;
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
    sink->set_formatter(MakeLogFormatter(json));
    spdlog::logger logger("compactor", sink);
    logger.set_level(spdlog::level::debug);
    body(logger);
    std::vector<std::string> lines;
    std::istringstream in(out.str());
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }
};

TEST_F(LogFormatTest, JsonLinesParseBackEvenWithQuotesNewlinesAndBadUtf8) {
  auto lines = Emit(true, [](spdlog::logger& l) {
    l.warn("said \"hi\"\nsecond line\ttab \\ backslash");
    l.info("bad utf8: \xff\xfe end");
  });
  ASSERT_EQ(lines.size(), 2u) << "one object per line: the newline in the message is escaped";
  auto j = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(j["msg"], "said \"hi\"\nsecond line\ttab \\ backslash");
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["process"], "compactor");
  EXPECT_EQ(j["ts"].get<std::string>().size(), 24u) << j["ts"];  // 2026-01-02T03:04:05.678Z
  EXPECT_FALSE(j.contains("generation"));
  auto k = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(k["level"], "info");
  EXPECT_EQ(k["msg"].get<std::string>().rfind("bad utf8: ", 0), 0u);
}

TEST_F(LogFormatTest, ScopesAttachIdsAndRestoreTheOuterOnes) {
  auto lines = Emit(true, [](spdlog::logger& l) {
    LogScope gen(LogContext().Generation(7, 12));
    l.info("in generation");
    {
      LogScope task(LogContext().Task("t-1").Entry("1700000000000-3"));
      l.info("in task");
    }
    l.info("back");
  });
  ASSERT_EQ(lines.size(), 3u);
  auto a = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(a["org"], 7);
  EXPECT_EQ(a["generation"], 12);
  EXPECT_FALSE(a.contains("task"));
  auto b = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(b["generation"], 12) << "inner scopes keep the outer ids";
  EXPECT_EQ(b["task"], "t-1");
  EXPECT_EQ(b["entry"], "1700000000000-3");
  auto c = nlohmann::json::parse(lines[2]);
  EXPECT_FALSE(c.contains("task"));
  EXPECT_EQ(c["generation"], 12);
  EXPECT_EQ(CurrentLogContext().generation, 0) << "scopes restore the empty context on exit";
}

TEST_F(LogFormatTest, TextModeAppendsIdsOnlyWhenSet) {
  auto lines = Emit(false, [](spdlog::logger& l) {
    l.info("plain");
    LogScope s(LogContext().Generation(0, 12).Task("t-9"));
    l.info("with ids");
  });
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find(" info compactor: plain"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find('['), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("compactor: with ids [gen=12 task=t-9]"), std::string::npos) << lines[1];
}

}  // namespace
}  // namespace streamfleet
