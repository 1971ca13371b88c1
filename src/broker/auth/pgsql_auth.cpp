// emq_auth_pgsql's connection: libpq. Statements are prepared once per connection and run
// with PQsendQueryPrepared; the answer is awaited with poll() on the connection's socket until
// the query deadline, after which the query is cancelled (PQcancel) and the connection closed.
// The server also gets statement_timeout = query_timeout. Values are sent and read as text.
#include <algorithm>
#include <cerrno>
#include <chrono>

#include <poll.h>

#include <libpq-fe.h>

#include "broker/auth/sql_auth.h"

namespace mqttd::broker::auth {

namespace {

using Clock = std::chrono::steady_clock;

struct ResultFree {
    void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultFree>;

std::string pq_message(PGconn* c) {
    std::string m = PQerrorMessage(c);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) {
        m.pop_back();
    }
    return m;
}

class PgConnection final : public BackendConnection {
public:
    PgConnection(PGconn* conn, const SqlConfig& config) : conn_(conn), config_(config) {}
    ~PgConnection() override { PQfinish(conn_); }
    PgConnection(const PgConnection&) = delete;
    PgConnection& operator=(const PgConnection&) = delete;

    static Result<std::unique_ptr<BackendConnection>, BackendError> open(const SqlConfig& cfg) {
        const long ms = cfg.options.query_timeout.count();
        // libpq's connect_timeout is whole seconds, at least 2.
        std::string connect_timeout = std::to_string(std::max<long>(2, (ms + 999) / 1000));
        std::string port = std::to_string(cfg.port);
        std::string options("-c statement_timeout=");
        options += std::to_string(ms);
        const char* keys[] = {"host",
                              "port",
                              "user",
                              "password",
                              "dbname",
                              "sslmode",
                              "client_encoding",
                              "connect_timeout",
                              "options",
                              nullptr};
        const char* values[] = {cfg.host.c_str(),     port.c_str(),
                                cfg.username.c_str(), cfg.password.c_str(),
                                cfg.database.c_str(), cfg.ssl ? "require" : "disable",
                                cfg.encoding.c_str(), connect_timeout.c_str(),
                                options.c_str(),      nullptr};
        PGconn* c = PQconnectdbParams(keys, values, 0);
        if (c == nullptr) {
            return Err(BackendError{"PQconnectdbParams: out of memory", false});
        }
        if (PQstatus(c) != CONNECTION_OK) {
            BackendError e{"connect " + cfg.host + ":" + port + ": " + pq_message(c), false};
            PQfinish(c);
            return Err(std::move(e));
        }
        return std::unique_ptr<BackendConnection>(std::make_unique<PgConnection>(c, cfg));
    }

    Result<std::optional<StoredCredentials>, BackendError> credentials(
            const ClientIdentity& id) override {
        auto rows = run("mqttd_auth", prepared_auth_, config_.auth_query, id, 1);
        if (!rows) {
            return Err(rows.error());
        }
        if (rows->empty() || rows->front().empty()) {
            return std::optional<StoredCredentials>();
        }
        const SqlRow& row = rows->front();
        StoredCredentials sc;
        sc.hash = row[0].value_or("");
        if (row.size() > 1) {
            sc.salt = row[1].value_or("");
        }
        return std::optional<StoredCredentials>(std::move(sc));
    }

    Result<bool, BackendError> superuser(const ClientIdentity& id) override {
        auto rows = run("mqttd_super", prepared_super_, config_.super_query, id, 1);
        if (!rows) {
            return Err(rows.error());
        }
        return !rows->empty() && !rows->front().empty() && rows->front()[0] &&
               truthy(*rows->front()[0]);
    }

    Result<Verdict, BackendError> acl(const ClientIdentity& id,
                                      Access access,
                                      std::string_view topic) override {
        auto rows = run("mqttd_acl", prepared_acl_, config_.acl_query, id, kMaxAclRows);
        if (!rows) {
            return Err(rows.error());
        }
        return sql_acl_decide(*rows, id, access, topic);
    }

private:
    // Waits for the last result of the command in flight; nullptr result with an error set
    // on failure or timeout.
    Result<ResultPtr, BackendError> await(Clock::time_point deadline) {
        for (;;) {
            if (PQconsumeInput(conn_) == 0) {
                return Err(BackendError{pq_message(conn_), false});
            }
            if (PQisBusy(conn_) == 0) {
                break;
            }
            auto left =
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0) {
                cancel();
                return Err(BackendError{"query timed out", true});
            }
            pollfd pfd{PQsocket(conn_), POLLIN, 0};
            int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
            if (n < 0 && errno != EINTR) {
                return Err(BackendError{"poll failed", false});
            }
        }
        ResultPtr last;
        while (PGresult* r = PQgetResult(conn_)) {
            last.reset(r);
            ExecStatusType st = PQresultStatus(r);
            if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
                std::string m = PQresultErrorMessage(r);
                while (!m.empty() && m.back() == '\n') {
                    m.pop_back();
                }
                while (PGresult* rest = PQgetResult(conn_)) {
                    PQclear(rest);
                }
                return Err(BackendError{m, false});
            }
        }
        return last;
    }

    void cancel() {
        if (PGcancel* c = PQgetCancel(conn_)) {
            char buf[256];
            PQcancel(c, buf, sizeof buf);
            PQfreeCancel(c);
        }
    }

    Result<std::vector<SqlRow>, BackendError> run(const char* name,
                                                  bool& prepared,
                                                  const SqlQuery& q,
                                                  const ClientIdentity& id,
                                                  size_t max_rows) {
        auto deadline = Clock::now() + config_.options.query_timeout;
        if (!prepared) {
            if (PQsendPrepare(conn_, name, q.text.c_str(), static_cast<int>(q.params.size()),
                              nullptr) == 0) {
                return Err(BackendError{pq_message(conn_), false});
            }
            auto r = await(deadline);
            if (!r) {
                return Err(BackendError{"prepare: " + r.error().message, r.error().timeout});
            }
            prepared = true;
        }
        std::vector<std::string> values = bind_values(q, id);
        std::vector<const char*> ptrs;
        std::vector<int> lens;
        std::vector<int> formats(values.size(), 0);
        for (const auto& v : values) {
            ptrs.push_back(v.c_str());
            lens.push_back(static_cast<int>(v.size()));
        }
        if (PQsendQueryPrepared(conn_, name, static_cast<int>(values.size()), ptrs.data(),
                                lens.data(), formats.data(), 0) == 0) {
            return Err(BackendError{pq_message(conn_), false});
        }
        auto r = await(deadline);
        if (!r) {
            return Err(r.error());
        }
        std::vector<SqlRow> rows;
        PGresult* res = r->get();
        if (res == nullptr || PQresultStatus(res) != PGRES_TUPLES_OK) {
            return rows;
        }
        const int n = std::min(PQntuples(res), static_cast<int>(max_rows));
        const int cols = PQnfields(res);
        for (int i = 0; i < n; ++i) {
            SqlRow row(static_cast<size_t>(cols));
            for (int c = 0; c < cols; ++c) {
                if (PQgetisnull(res, i, c) == 0) {
                    size_t len = std::min<size_t>(static_cast<size_t>(PQgetlength(res, i, c)),
                                                  kMaxValueBytes);
                    row[static_cast<size_t>(c)] = std::string(PQgetvalue(res, i, c), len);
                }
            }
            rows.push_back(std::move(row));
        }
        return rows;
    }

    PGconn* conn_;
    const SqlConfig& config_;  // owned by the provider's connector, which outlives this
    bool prepared_auth_ = false;
    bool prepared_super_ = false;
    bool prepared_acl_ = false;
};

}  // namespace

std::shared_ptr<BackendAuth> make_pgsql_auth(const SqlConfig& config,
                                             std::shared_ptr<BackendStats> stats) {
    auto cfg = std::make_shared<const SqlConfig>(config);
    return std::make_shared<BackendAuth>(
            "emq_auth_pgsql", with_cache_letters(*cfg),
            [cfg]() { return PgConnection::open(*cfg); }, std::move(stats));
}

}  // namespace mqttd::broker::auth
