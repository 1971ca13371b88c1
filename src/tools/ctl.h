// `mqttd ctl`: a running mqttd managed over its REST API v2 (like EMQ's emqttd_ctl), with the
// command line parsed by CLI11.
//
//   mqttd ctl [--api URL] [--user U] [--password P | --password-file F] [--node N] [--json]
//             status | clients list|show|kick | sessions list|show|queue | subscriptions ID |
//             routes [TOPIC] | retained list|delete | plugins list|load|unload |
//             configs get|set | users list|add|passwd|del | acl reload |
//             backup [create|list|delete]
//
// --api defaults to http://127.0.0.1:8080. Credentials: --user / --password, else the
// environment (MQTTD_API_USER, MQTTD_API_PASSWORD), else --password-file (which must not be
// readable by group or others); the user defaults to admin. Output: tables, or the API's
// `result` as JSON with --json.
//
// EXIT STATUS (for scripts): 0 done; 1 the API answered an error code (its message on stderr);
// 2 usage error; 3 the API could not be reached or answered HTTP other than 200 / 401;
// 4 the credentials were refused (HTTP 401).
//
// Thread-safety: runs on the calling thread only.
#pragma once

namespace mqttd::tools {

// argv[0] is "ctl". Prints to stdout / stderr; returns the exit status.
int ctl_main(int argc, const char* const* argv);

}  // namespace mqttd::tools
