#include "broker/auth/credential_store.h"

#include <algorithm>
#include <map>
#include <mutex>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace mqttd::broker::auth {

namespace {
constexpr std::string_view kScramPrefix = "auth.username_scram.";
}  // namespace

CredentialStore::CredentialStore(storage::Store& store,
                                 CredentialKind kind,
                                 CredentialOptions options)
    : store_(store), kind_(kind), options_(options) {
    if (RAND_bytes(cache_key_, sizeof(cache_key_)) != 1) {
        // Without a secret key the cache tag would be a plain hash: run without a cache.
        options_.cache_capacity = 0;
    }
    std::string prefix(key_prefix(kind_));
    for (auto& rec : store_.config_with_prefix(prefix)) {
        hashes_.emplace(rec.key.substr(prefix.size()), std::move(rec.value));
    }
    if (kind_ == CredentialKind::Username) {
        for (auto& rec : store_.config_with_prefix(kScramPrefix)) {
            scram_.emplace(rec.key.substr(kScramPrefix.size()), std::move(rec.value));
        }
    }
    pool_ = std::make_unique<TaskPool>(std::max<size_t>(1, options_.verify_threads),
                                       options_.max_queue);
}

CredentialStore::~CredentialStore() {
    pool_->stop();
}

std::string_view CredentialStore::key_prefix(CredentialKind kind) {
    return kind == CredentialKind::Username ? "auth.username." : "auth.clientid.";
}

std::string_view CredentialStore::name() const {
    return kind_ == CredentialKind::Username ? "emq_auth_username" : "emq_auth_clientid";
}

std::string CredentialStore::cache_tag(std::string_view password) const {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), cache_key_, sizeof(cache_key_),
             reinterpret_cast<const unsigned char*>(password.data()), password.size(), out,
             &len) == nullptr) {
        return {};
    }
    return std::string(reinterpret_cast<const char*>(out), len);
}

bool CredentialStore::cache_hit(std::string_view name, const std::string& tag) const {
    if (tag.empty()) {
        return false;
    }
    std::shared_lock lock(cache_mu_);
    auto it = cache_.find(std::string(name));
    return it != cache_.end() && it->second.size() == tag.size() &&
           CRYPTO_memcmp(it->second.data(), tag.data(), tag.size()) == 0;
}

void CredentialStore::cache_put(std::string_view name, std::string tag) {
    if (tag.empty() || options_.cache_capacity == 0) {
        return;
    }
    std::unique_lock lock(cache_mu_);
    if (cache_.size() >= options_.cache_capacity) {
        cache_.clear();
    }
    cache_[std::string(name)] = std::move(tag);
}

void CredentialStore::cache_drop(std::string_view name) {
    std::unique_lock lock(cache_mu_);
    cache_.erase(std::string(name));
}

void CredentialStore::authenticate(const ClientIdentity& id, DecisionCallback done) {
    const std::string* subject = kind_ == CredentialKind::Username
                                         ? (id.username ? &*id.username : nullptr)
                                         : &id.client_id;
    if (subject == nullptr || subject->empty() || !contains(*subject)) {
        done(Decision::ignore());
        return;
    }
    std::string password = id.password ? *id.password : std::string();
    std::string tag = cache_tag(password);
    if (cache_hit(*subject, tag)) {
        cache_hits_.fetch_add(1, std::memory_order_relaxed);
        done(Decision::allow(std::string(this->name())));
        return;
    }
    // std::function needs a copyable callable: share the callback between the run and the
    // cancel path.
    auto shared_done = std::make_shared<DecisionCallback>(std::move(done));
    bool queued = pool_->submit([this, n = *subject, pw = std::move(password), tag = std::move(tag),
                                 shared_done](bool run) mutable {
        if (!run) {
            (*shared_done)(Decision::failed("auth stopped"));
            return;
        }
        std::string encoded;
        {
            std::shared_lock lock(mu_);
            auto it = hashes_.find(n);
            if (it == hashes_.end()) {
                lock.unlock();
                (*shared_done)(Decision::ignore());
                return;
            }
            encoded = it->second;
        }
        verifications_.fetch_add(1, std::memory_order_relaxed);
        if (verify_password(pw, encoded)) {
            // Cache only if the entry is still the one verified against.
            {
                std::shared_lock lock(mu_);
                auto it = hashes_.find(n);
                if (it != hashes_.end() && it->second == encoded) {
                    cache_put(n, std::move(tag));
                }
            }
            (*shared_done)(Decision::allow(std::string(this->name())));
        } else {
            (*shared_done)(Decision::deny("bad password"));
        }
    });
    if (!queued) {
        busy_.fetch_add(1, std::memory_order_relaxed);
        (*shared_done)(Decision::failed("auth busy"));
    }
}

storage::Status CredentialStore::add(std::string_view name, std::string_view password) {
    if (name.empty() || name.size() > kMaxCredentialBytes ||
        password.size() > kMaxCredentialBytes) {
        return storage::Status::invalid_argument("name must be 1.." +
                                                 std::to_string(kMaxCredentialBytes) +
                                                 " bytes and password at most as long");
    }
    std::string encoded = hash_password(password, options_.iterations);
    if (encoded.empty()) {
        return storage::Status::io_error("password hashing failed");
    }
    storage::WriteBatch batch;
    batch.put_config(std::string(key_prefix(kind_)) + std::string(name), encoded);
    std::string scram;
    if (kind_ == CredentialKind::Username) {
        auto cred = make_scram_credential(password, options_.scram_iterations);
        if (!cred) {
            return storage::Status::io_error("SCRAM key derivation failed");
        }
        scram = encode_scram_credential(*cred);
        batch.put_config(std::string(kScramPrefix) + std::string(name), scram);
    }
    storage::Status st = store_.write(std::move(batch));
    if (!st.is_ok()) {
        return st;
    }
    {
        std::unique_lock lock(mu_);
        hashes_[std::string(name)] = std::move(encoded);
        if (!scram.empty()) {
            scram_[std::string(name)] = std::move(scram);
        }
    }
    cache_drop(name);
    return storage::Status::ok();
}

storage::Status CredentialStore::remove(std::string_view name) {
    if (!contains(name)) {
        return storage::Status::not_found(std::string(name));
    }
    storage::WriteBatch batch;
    batch.delete_config(std::string(key_prefix(kind_)) + std::string(name));
    if (kind_ == CredentialKind::Username) {
        batch.delete_config(std::string(kScramPrefix) + std::string(name));
    }
    storage::Status st = store_.write(std::move(batch));
    if (!st.is_ok()) {
        return st;
    }
    {
        std::unique_lock lock(mu_);
        hashes_.erase(std::string(name));
        scram_.erase(std::string(name));
    }
    cache_drop(name);
    return storage::Status::ok();
}

bool CredentialStore::contains(std::string_view name) const {
    std::shared_lock lock(mu_);
    return hashes_.contains(std::string(name));
}

std::vector<std::string> CredentialStore::list() const {
    std::vector<std::string> out;
    {
        std::shared_lock lock(mu_);
        out.reserve(hashes_.size());
        for (const auto& [n, h] : hashes_) {
            out.push_back(n);
        }
    }
    std::sort(out.begin(), out.end());
    return out;
}

Verdict CredentialStore::verify(std::string_view name, std::string_view password) {
    std::string encoded;
    {
        std::shared_lock lock(mu_);
        auto it = hashes_.find(std::string(name));
        if (it == hashes_.end()) {
            return Verdict::Ignore;
        }
        encoded = it->second;
    }
    std::string tag = cache_tag(password);
    if (cache_hit(name, tag)) {
        cache_hits_.fetch_add(1, std::memory_order_relaxed);
        return Verdict::Allow;
    }
    verifications_.fetch_add(1, std::memory_order_relaxed);
    if (!verify_password(password, encoded)) {
        return Verdict::Deny;
    }
    cache_put(name, std::move(tag));
    return Verdict::Allow;
}

std::optional<ScramCredential> CredentialStore::scram_credential(std::string_view name) const {
    std::shared_lock lock(mu_);
    auto it = scram_.find(std::string(name));
    if (it == scram_.end()) {
        return std::nullopt;
    }
    return decode_scram_credential(it->second);
}

CredentialStore::SeedResult CredentialStore::seed(
        const std::vector<std::pair<std::string, std::string>>& config) {
    SeedResult result;
    const std::string prefix = kind_ == CredentialKind::Username ? "auth.user." : "auth.client.";
    const std::string name_key = kind_ == CredentialKind::Username ? "username" : "clientid";
    // N -> (name, password); std::map keeps N order for deterministic warnings.
    std::map<std::string, std::pair<std::optional<std::string>, std::optional<std::string>>> pairs;
    for (const auto& [key, value] : config) {
        if (key.compare(0, prefix.size(), prefix) != 0) {
            continue;
        }
        std::string rest = key.substr(prefix.size());
        size_t dot = rest.find('.');
        if (dot == std::string::npos) {
            continue;
        }
        std::string n = rest.substr(0, dot);
        std::string field = rest.substr(dot + 1);
        if (field == name_key) {
            pairs[n].first = value;
        } else if (field == "password") {
            pairs[n].second = value;
        }
    }
    for (const auto& [n, p] : pairs) {
        if (!p.first || !p.second) {
            result.warnings.push_back(prefix + n + ": needs both ." + name_key +
                                      " and .password; skipped");
            continue;
        }
        if (contains(*p.first)) {
            continue;
        }
        storage::Status st = add(*p.first, *p.second);
        if (!st.is_ok()) {
            if (result.status.is_ok()) {
                result.status = st;
            }
            result.warnings.push_back(prefix + n + ": " + st.to_string());
            continue;
        }
        ++result.added;
    }
    return result;
}

CredentialCounters CredentialStore::counters() const {
    return {cache_hits_.load(std::memory_order_relaxed),
            verifications_.load(std::memory_order_relaxed), busy_.load(std::memory_order_relaxed)};
}

}  // namespace mqttd::broker::auth
