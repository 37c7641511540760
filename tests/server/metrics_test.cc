#include "server/metrics.h"

#include <gtest/gtest.h>
#include <kj/exception.h>

#include <atomic>
#include <cmath>
#include <limits>

namespace esd::server {
namespace {

TEST(MetricsTextTest, CounterHasHelpTypeAndSample) {
  MetricsText m;
  m.Counter("esd_appends_total", "Append calls accepted.", 12345);
  EXPECT_EQ(m.Take(),
            "# HELP esd_appends_total Append calls accepted.\n"
            "# TYPE esd_appends_total counter\n"
            "esd_appends_total 12345\n");
}

TEST(MetricsTextTest, GaugeHasHelpTypeAndSample) {
  MetricsText m;
  m.Gauge("esd_subscribers", "Open subscriptions.", 3);
  m.Gauge("esd_ratio", "A fraction.", 0.25);
  EXPECT_EQ(m.Take(),
            "# HELP esd_subscribers Open subscriptions.\n"
            "# TYPE esd_subscribers gauge\n"
            "esd_subscribers 3\n"
            "# HELP esd_ratio A fraction.\n"
            "# TYPE esd_ratio gauge\n"
            "esd_ratio 0.25\n");
}

TEST(MetricsTextTest, LabelledGaugeQuotesAndEscapesLabelValues) {
  MetricsText m;
  m.Gauge("esd_build_info", "Which esd.", {{"version", "0.1.0"}, {"commit", "a\"b\\c\nd"}}, 1);
  EXPECT_EQ(m.Take(),
            "# HELP esd_build_info Which esd.\n"
            "# TYPE esd_build_info gauge\n"
            "esd_build_info{version=\"0.1.0\",commit=\"a\\\"b\\\\c\\nd\"} 1\n");
  EXPECT_THROW(m.Gauge("x", "h", {{"bad label", "v"}}, 1), kj::Exception);
}

TEST(MetricsTextTest, HistogramBucketsAreCumulativeAndInfEqualsCount) {
  storage::Histogram hist({10, 100, 1000});
  for (uint64_t v : {5, 7, 50, 500, 5000}) hist.Record(v);
  MetricsText m;
  m.Histogram("esd_group_size", "Events per group.", hist.Read());
  EXPECT_EQ(m.Take(),
            "# HELP esd_group_size Events per group.\n"
            "# TYPE esd_group_size histogram\n"
            "esd_group_size_bucket{le=\"10\"} 2\n"
            "esd_group_size_bucket{le=\"100\"} 3\n"
            "esd_group_size_bucket{le=\"1000\"} 4\n"
            "esd_group_size_bucket{le=\"+Inf\"} 5\n"
            "esd_group_size_sum 5562\n"
            "esd_group_size_count 5\n");
}

TEST(MetricsTextTest, HistogramScaleAppliesToBoundsAndSumNotCounts) {
  storage::Histogram hist({100, 250, 1000000});
  hist.Record(90);
  hist.Record(200);
  hist.Record(2000000);
  MetricsText m;
  m.Histogram("esd_fsync_seconds", "fdatasync latency.", hist.Read(), 1e-6);
  EXPECT_EQ(m.Take(),
            "# HELP esd_fsync_seconds fdatasync latency.\n"
            "# TYPE esd_fsync_seconds histogram\n"
            "esd_fsync_seconds_bucket{le=\"0.0001\"} 1\n"
            "esd_fsync_seconds_bucket{le=\"0.00025\"} 2\n"
            "esd_fsync_seconds_bucket{le=\"1\"} 2\n"
            "esd_fsync_seconds_bucket{le=\"+Inf\"} 3\n"
            "esd_fsync_seconds_sum 2.00029\n"
            "esd_fsync_seconds_count 3\n");
}

TEST(MetricsTextTest, EmptyHistogramHasZeroBuckets) {
  storage::Histogram hist({1});
  MetricsText m;
  m.Histogram("h", "x", hist.Read());
  EXPECT_EQ(m.Take(),
            "# HELP h x\n# TYPE h histogram\n"
            "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 0\nh_sum 0\nh_count 0\n");
}

TEST(MetricsTextTest, HelpEscapesBackslashAndNewline) {
  MetricsText m;
  m.Counter("c", "a\\b\nc \"quoted\"", 1);
  EXPECT_EQ(m.Take(), "# HELP c a\\\\b\\nc \"quoted\"\n# TYPE c counter\nc 1\n");
}

TEST(MetricsTextTest, IntegersPrintWithoutExponentOrDecimals) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(-0.0), "0");
  EXPECT_EQ(FormatMetricValue(12345), "12345");
  EXPECT_EQ(FormatMetricValue(1000000), "1000000");
  EXPECT_EQ(FormatMetricValue(-42), "-42");
  EXPECT_EQ(FormatMetricValue(1e18), "1000000000000000000");
  EXPECT_EQ(FormatMetricValue(9007199254740993.0), "9007199254740992");
}

TEST(MetricsTextTest, FractionsRoundTripExactly) {
  EXPECT_EQ(FormatMetricValue(0.5), "0.5");
  EXPECT_EQ(FormatMetricValue(0.0001), "0.0001");
  EXPECT_EQ(FormatMetricValue(1.5e-9), "1.5e-09");
  EXPECT_EQ(FormatMetricValue(123456.5), "123456.5");
  EXPECT_EQ(FormatMetricValue(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(std::stod(FormatMetricValue(1.0 / 3)), 1.0 / 3);
  EXPECT_EQ(std::stod(FormatMetricValue(1.5e-9)), 1.5e-9);
}

TEST(MetricsTextTest, SpecialValuesUseFormatSpelling) {
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
}

TEST(MetricsTextTest, InvalidNamesAreRejected) {
  MetricsText m;
  EXPECT_THROW(m.Counter("", "x", 1), kj::Exception);
  EXPECT_THROW(m.Counter("9lives", "x", 1), kj::Exception);
  EXPECT_THROW(m.Gauge("has-dash", "x", 1), kj::Exception);
  EXPECT_THROW(m.Gauge("has space", "x", 1), kj::Exception);
  m.Counter("ok:name_1", "x", 1);
  EXPECT_EQ(m.Take(), "# HELP ok:name_1 x\n# TYPE ok:name_1 counter\nok:name_1 1\n");
}

TEST(MetricsTextTest, TakeResets) {
  MetricsText m;
  m.Gauge("g", "x", 1);
  EXPECT_FALSE(m.Take().empty());
  EXPECT_EQ(m.Take(), "");
}

TEST(MetricsTextTest, LabelsPrintInBracesInTheOrderGiven) {
  MetricsText m;
  m.Counter("esd_appends_total", "Appends by outcome.",
            {{{{"outcome", "ok"}}, 3}, {{{"outcome", "out_of_space"}, {"stream", "a"}}, 1}});
  EXPECT_EQ(m.Take(),
            "# HELP esd_appends_total Appends by outcome.\n"
            "# TYPE esd_appends_total counter\n"
            "esd_appends_total{outcome=\"ok\"} 3\n"
            "esd_appends_total{outcome=\"out_of_space\",stream=\"a\"} 1\n");
}

TEST(MetricsTextTest, LabelValuesEscapeBackslashQuoteAndNewline) {
  MetricsText m;
  m.Gauge("g", "x", {{{{"v", "a\\b\"c\nd"}}, 1}});
  EXPECT_EQ(m.Take(), "# HELP g x\n# TYPE g gauge\ng{v=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(MetricsTextTest, AFamilyWithoutSamplesHasOnlyItsHeader) {
  MetricsText m;
  m.Counter("esd_order_commands_total", "Commands.", std::vector<MetricsText::Sample>{});
  EXPECT_EQ(m.Take(), "# HELP esd_order_commands_total Commands.\n# TYPE esd_order_commands_total counter\n");
}

TEST(MetricsTextTest, InvalidLabelNamesAreRejected) {
  MetricsText m;
  EXPECT_THROW(m.Counter("c", "x", {{{{"has-dash", "v"}}, 1}}), kj::Exception);
  EXPECT_THROW(m.Counter("c", "x", {{{{"9x", "v"}}, 1}}), kj::Exception);
  EXPECT_THROW(m.Counter("c", "x", {{{{"__reserved", "v"}}, 1}}), kj::Exception);
  EXPECT_THROW(m.Counter("c", "x", {{{{"colon:no", "v"}}, 1}}), kj::Exception);
}

TEST(MetricsTextTest, LabelledHistogramsPutLeLastAndLabelSumAndCount) {
  storage::Histogram a({10}), b({10});
  a.Record(5);
  b.Record(50);
  MetricsText m;
  m.Histogram("esd_rpc_duration_seconds", "Latency.",
              {{{{"method", "append"}}, a.Read()}, {{{"method", "say \"hi\""}}, b.Read()}}, 1e-6);
  EXPECT_EQ(m.Take(),
            "# HELP esd_rpc_duration_seconds Latency.\n"
            "# TYPE esd_rpc_duration_seconds histogram\n"
            "esd_rpc_duration_seconds_bucket{method=\"append\",le=\"1e-05\"} 1\n"
            "esd_rpc_duration_seconds_bucket{method=\"append\",le=\"+Inf\"} 1\n"
            "esd_rpc_duration_seconds_sum{method=\"append\"} 5e-06\n"
            "esd_rpc_duration_seconds_count{method=\"append\"} 1\n"
            "esd_rpc_duration_seconds_bucket{method=\"say \\\"hi\\\"\",le=\"1e-05\"} 0\n"
            "esd_rpc_duration_seconds_bucket{method=\"say \\\"hi\\\"\",le=\"+Inf\"} 1\n"
            "esd_rpc_duration_seconds_sum{method=\"say \\\"hi\\\"\"} 5e-05\n"
            "esd_rpc_duration_seconds_count{method=\"say \\\"hi\\\"\"} 1\n");
}

TEST(MetricsTextTest, AHistogramLabelNamedLeIsRejected) {
  storage::Histogram h({10});
  MetricsText m;
  EXPECT_THROW(m.Histogram("h", "x", {{{{"le", "1"}}, h.Read()}}), kj::Exception);
}

TEST(CounterFamilyTest, CountsEachLabelSetAndLeavesEmptyValuesOut) {
  CounterFamily f(std::vector<std::string>{"outcome", "rule"});
  f.Add({"ok", ""});
  f.Add({"rejected", "order-empty"}, 2);
  f.Add({"ok", ""});
  EXPECT_EQ(f.Get({"ok", ""}), 2u);
  EXPECT_EQ(f.Get({"rejected", "order-empty"}), 2u);
  EXPECT_EQ(f.Get({"rejected", "price-mismatch"}), 0u);
  MetricsText m;
  m.Counter("c", "x", f.Samples());
  EXPECT_EQ(m.Take(), "# HELP c x\n# TYPE c counter\nc{outcome=\"ok\"} 2\nc{outcome=\"rejected\",rule=\"order-empty\"} 2\n");
}

TEST(CounterFamilyTest, ACounterTakenWithAtCountsWithAddAndShowsOnlyOnceCounted) {
  CounterFamily f(std::vector<std::string>{"outcome"});
  std::atomic<uint64_t>& ok = f.At({"ok"});
  MetricsText m;
  m.Counter("c", "x", f.Samples());
  EXPECT_EQ(m.Take(), "# HELP c x\n# TYPE c counter\n") << "a label set at 0 is not a sample yet";
  ok.fetch_add(3);
  f.Add({"ok"});
  f.Add({"overloaded"});
  EXPECT_EQ(&f.At({"ok"}), &ok) << "the same counter for the same labels, as others are added";
  EXPECT_EQ(f.Get({"ok"}), 4u);
  m.Counter("c", "x", f.Samples());
  EXPECT_EQ(m.Take(), "# HELP c x\n# TYPE c counter\nc{outcome=\"ok\"} 4\nc{outcome=\"overloaded\"} 1\n");
  EXPECT_THROW(f.At({"ok", "extra"}), kj::Exception);
}

TEST(CounterFamilyTest, AddNeedsOneValuePerLabel) {
  CounterFamily f(std::vector<std::string>{"outcome"});
  EXPECT_THROW(f.Add({"ok", "extra"}), kj::Exception);
}

}  // namespace
}  // namespace esd::server
