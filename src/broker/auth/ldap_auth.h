// emq_auth_ldap: users in an LDAP directory (OpenLDAP's libldap, libldap2-dev), with EMQ
// 2.x's keys:
//   auth.ldap.servers                  host[,host...] (default 127.0.0.1), tried in order
//   auth.ldap.port                     389
//   auth.ldap.pool                     connections = threads (8)
//   auth.ldap.bind_dn / .bind_password the identity the broker binds as (it must be allowed to
//                                      read the password attribute)
//   auth.ldap.timeout                  seconds to open a connection (30)
//   auth.ldap.device_dn                search base ("ou=device,dc=emqtt,dc=io")
//   auth.ldap.match_objectclass        "mqttUser"
//   auth.ldap.username.attributetype   "uid"
//   auth.ldap.password.attributetype   "userPassword"
//   auth.ldap.ssl                      true: ldaps://
//   auth.ldap.query_timeout, .on_error, .cache_ttl   backend_auth.h
// A CONNECT searches the subtree of device_dn with
//   (&(objectClass=<match_objectclass>)(<username attribute>=<username, RFC 4515 escaped>))
// (db_template.h's ldap_escape: a username like "*)(uid=*" is a literal value, never a filter).
// No entry -> Ignore; the password attribute's value carries its scheme ({SSHA}, {SHA},
// {CRYPT}, ... or plain: password_check.h). An entry with isSuperuser = TRUE is a superuser.
// ACL (the mqttUser schema of data/schema/mqtt_user.schema): the entry's mqttPublishTopic,
// mqttSubscriptionTopic and mqttPubSubTopic values are topic filters it is allowed; a match
// -> Allow, anything else -> Ignore (the next checker, then mqtt.acl_nomatch).
//
// Thread-safety: LdapConfig is a value; the provider is a BackendAuth (any thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/auth/backend_auth.h"

namespace mqttd::broker::auth {

struct LdapConfig {
    std::vector<std::string> servers = {"127.0.0.1"};
    uint16_t port = 389;
    std::string bind_dn;
    std::string bind_password;
    std::chrono::seconds timeout{30};
    std::string device_dn;
    std::string match_objectclass;
    std::string username_attr;
    std::string password_attr;
    bool ssl = false;
    BackendOptions options;

    LdapConfig();
    // Sets one "auth.ldap.*" key; returns an error line, or "" when applied.
    std::string set(std::string_view key, std::string_view value);
    // The search filter for `username`. Exposed for tests.
    std::string filter_for(std::string_view username) const;
};

const std::vector<std::pair<std::string, std::string>>& ldap_defaults();

std::shared_ptr<BackendAuth> make_ldap_auth(const LdapConfig& config,
                                            std::shared_ptr<BackendStats> stats);

}  // namespace mqttd::broker::auth
