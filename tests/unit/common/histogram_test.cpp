// Histogram: bucket placement at and around the bounds, cumulative counts, sum and count,
// concurrent observers.
#include "common/histogram.h"

#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace mqttd {
namespace {

TEST(Histogram, EmptyHasZeroBucketsAndInf) {
    Histogram h{1, 10, 100};
    auto s = h.snapshot();
    EXPECT_EQ(s.bounds, (std::vector<uint64_t>{1, 10, 100}));
    EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{0, 0, 0, 0}));
    EXPECT_EQ(s.sum, 0u);
    EXPECT_EQ(s.count, 0u);
}

// Bounds are inclusive (Prometheus `le`): a value equal to a bound counts in that bucket.
TEST(Histogram, BoundsAreInclusiveAndCountsCumulative) {
    Histogram h{1, 10, 100};
    for (uint64_t v : {0, 1, 2, 10, 11, 100, 101, 5000}) {
        h.observe(v);
    }
    auto s = h.snapshot();
    EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 4, 6, 8}));
    EXPECT_EQ(s.count, 8u);
    EXPECT_EQ(s.sum, 0u + 1 + 2 + 10 + 11 + 100 + 101 + 5000);
}

TEST(Histogram, ConcurrentObserversLoseNothing) {
    Histogram h{5};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) {
        ts.emplace_back([&h, t] {
            for (int i = 0; i < 10000; ++i) {
                h.observe(static_cast<uint64_t>(t * 3));  // 0, 3 in the first bucket; 6, 9 above
            }
        });
    }
    for (auto& t : ts) {
        t.join();
    }
    auto s = h.snapshot();
    EXPECT_EQ(s.cumulative[0], 20000u);
    EXPECT_EQ(s.cumulative[1], 40000u);
    EXPECT_EQ(s.count, 40000u);
    EXPECT_EQ(s.sum, 10000u * (0 + 3 + 6 + 9));
}

}  // namespace
}  // namespace mqttd
