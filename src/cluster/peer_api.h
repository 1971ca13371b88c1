// How one member reaches another's REST API (src/cluster/README.md, "Cluster-wide REST"): the
// address a node advertises in its record, and one HTTP call to it. The REST API is a cold path:
// each call opens its own connection (libcurl easy handle), bounded by a timeout, so a slow or
// dead peer costs the asking thread at most that.
#pragma once

#include <optional>
#include <string>

#include "broker/admin.h"

namespace mqttd::cluster {

// The "host:port" other members use to reach a listener of this node (its REST API, its
// node-to-node link): `advertise` when set, else `listen` ("host:port" or "port"), with a
// wildcard or missing host replaced by this machine's host name. Empty when it is off.
std::string advertised_address(const std::string& listen, const std::string& advertise);

// Sends `req` to http://<address><req.target>, marked with ClusterView::kScopeHeader.
// nullopt, with `why`, when no HTTP answer came within `timeout_ms`.
std::optional<broker::ClusterView::PeerAnswer> call_peer_api(
        const std::string& address,
        const broker::ClusterView::PeerRequest& req,
        long timeout_ms,
        std::string* why);

}  // namespace mqttd::cluster
