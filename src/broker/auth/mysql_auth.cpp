// emq_auth_mysql's connection: MariaDB Connector/C (works with MySQL and MariaDB servers),
// blocking, with connect/read/write timeouts set to the query timeout (whole seconds, rounded
// up: the connector's unit). Each query is a server-side prepared statement, prepared on first
// use per connection; every column is fetched as text (numbers included), each value bounded by
// kMaxValueBytes.
#include <mutex>

#include <mysql.h>

#include "broker/auth/sql_auth.h"

namespace mqttd::broker::auth {

namespace {

// mysql_library_init is not thread-safe; mysql_init would call it implicitly from pool
// threads.
void library_init() {
    static std::once_flag once;
    std::call_once(once, [] { mysql_library_init(0, nullptr, nullptr); });
}

class MysqlConnection final : public BackendConnection {
public:
    MysqlConnection(MYSQL* db, const SqlConfig& config) : db_(db), config_(config) {}
    ~MysqlConnection() override {
        for (MYSQL_STMT* s : {auth_, super_, acl_}) {
            if (s != nullptr) {
                mysql_stmt_close(s);
            }
        }
        mysql_close(db_);
    }
    MysqlConnection(const MysqlConnection&) = delete;
    MysqlConnection& operator=(const MysqlConnection&) = delete;

    static Result<std::unique_ptr<BackendConnection>, BackendError> open(const SqlConfig& cfg) {
        library_init();
        MYSQL* db = mysql_init(nullptr);
        if (db == nullptr) {
            return Err(BackendError{"mysql_init: out of memory", false});
        }
        auto secs = static_cast<unsigned int>((cfg.options.query_timeout.count() + 999) / 1000);
        mysql_optionsv(db, MYSQL_OPT_CONNECT_TIMEOUT, &secs);
        mysql_optionsv(db, MYSQL_OPT_READ_TIMEOUT, &secs);
        mysql_optionsv(db, MYSQL_OPT_WRITE_TIMEOUT, &secs);
        mysql_optionsv(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
        if (mysql_real_connect(db, cfg.host.c_str(), cfg.username.c_str(), cfg.password.c_str(),
                               cfg.database.c_str(), cfg.port, nullptr, 0) == nullptr) {
            BackendError e{
                    "connect " + cfg.host + ":" + std::to_string(cfg.port) + ": " + mysql_error(db),
                    false};
            mysql_close(db);
            return Err(std::move(e));
        }
        return std::unique_ptr<BackendConnection>(std::make_unique<MysqlConnection>(db, cfg));
    }

    Result<std::optional<StoredCredentials>, BackendError> credentials(
            const ClientIdentity& id) override {
        auto rows = run(auth_, config_.auth_query, id, 1);
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
        auto rows = run(super_, config_.super_query, id, 1);
        if (!rows) {
            return Err(rows.error());
        }
        return !rows->empty() && !rows->front().empty() && rows->front()[0] &&
               truthy(*rows->front()[0]);
    }

    Result<Verdict, BackendError> acl(const ClientIdentity& id,
                                      Access access,
                                      std::string_view topic) override {
        auto rows = run(acl_, config_.acl_query, id, kMaxAclRows);
        if (!rows) {
            return Err(rows.error());
        }
        return sql_acl_decide(*rows, id, access, topic);
    }

private:
    BackendError stmt_error(MYSQL_STMT* s, std::string_view what) const {
        return BackendError{std::string(what) + ": " + mysql_stmt_error(s), false};
    }

    Result<std::vector<SqlRow>, BackendError> run(MYSQL_STMT*& stmt,
                                                  const SqlQuery& q,
                                                  const ClientIdentity& id,
                                                  size_t max_rows) {
        if (stmt == nullptr) {
            stmt = mysql_stmt_init(db_);
            if (stmt == nullptr) {
                return Err(
                        BackendError{std::string("mysql_stmt_init: ") + mysql_error(db_), false});
            }
            if (mysql_stmt_prepare(stmt, q.text.data(), q.text.size()) != 0) {
                return Err(stmt_error(stmt, "prepare"));
            }
            if (mysql_stmt_param_count(stmt) != q.params.size()) {
                return Err(BackendError{"prepare: the query has '?' markers of its own", false});
            }
        }
        std::vector<std::string> values = bind_values(q, id);
        std::vector<MYSQL_BIND> params(values.size());
        std::vector<unsigned long> param_lens(values.size());
        for (size_t i = 0; i < values.size(); ++i) {
            param_lens[i] = values[i].size();
            params[i].buffer_type = MYSQL_TYPE_STRING;
            params[i].buffer = values[i].data();
            params[i].buffer_length = values[i].size();
            params[i].length = &param_lens[i];
        }
        if (!params.empty() && mysql_stmt_bind_param(stmt, params.data()) != 0) {
            return Err(stmt_error(stmt, "bind"));
        }
        if (mysql_stmt_execute(stmt) != 0) {
            return Err(stmt_error(stmt, "execute"));
        }
        std::vector<SqlRow> rows;
        MYSQL_RES* meta = mysql_stmt_result_metadata(stmt);
        if (meta == nullptr) {
            return rows;  // not a SELECT
        }
        const unsigned int ncols = mysql_num_fields(meta);
        mysql_free_result(meta);
        std::vector<MYSQL_BIND> out(ncols);
        std::vector<std::string> bufs(ncols, std::string(256, '\0'));
        std::vector<unsigned long> lens(ncols);
        std::vector<my_bool> nulls(ncols);
        std::vector<my_bool> errors(ncols);
        for (unsigned int i = 0; i < ncols; ++i) {
            out[i].buffer_type = MYSQL_TYPE_STRING;
            out[i].buffer = bufs[i].data();
            out[i].buffer_length = bufs[i].size();
            out[i].length = &lens[i];
            out[i].is_null = &nulls[i];
            out[i].error = &errors[i];
        }
        if (mysql_stmt_bind_result(stmt, out.data()) != 0) {
            BackendError e = stmt_error(stmt, "bind result");
            mysql_stmt_free_result(stmt);
            return Err(std::move(e));
        }
        for (;;) {
            int rc = mysql_stmt_fetch(stmt);
            if (rc == MYSQL_NO_DATA) {
                break;
            }
            if (rc == 1) {
                BackendError e = stmt_error(stmt, "fetch");
                mysql_stmt_free_result(stmt);
                return Err(std::move(e));
            }
            if (rows.size() >= max_rows) {
                continue;  // read the rest off the wire, keep the first max_rows
            }
            SqlRow row(ncols);
            for (unsigned int i = 0; i < ncols; ++i) {
                if (nulls[i] != 0) {
                    continue;
                }
                size_t n = std::min<size_t>(lens[i], kMaxValueBytes);
                if (n <= bufs[i].size()) {
                    row[i] = bufs[i].substr(0, n);
                    continue;
                }
                // MYSQL_DATA_TRUNCATED for this column: fetch the whole value (bounded).
                std::string big(n, '\0');
                MYSQL_BIND col{};
                unsigned long got = 0;
                col.buffer_type = MYSQL_TYPE_STRING;
                col.buffer = big.data();
                col.buffer_length = big.size();
                col.length = &got;
                if (mysql_stmt_fetch_column(stmt, &col, i, 0) != 0) {
                    BackendError e = stmt_error(stmt, "fetch column");
                    mysql_stmt_free_result(stmt);
                    return Err(std::move(e));
                }
                row[i] = std::move(big);
            }
            rows.push_back(std::move(row));
        }
        mysql_stmt_free_result(stmt);
        return rows;
    }

    MYSQL* db_;
    const SqlConfig& config_;  // owned by the provider's connector, which outlives this
    MYSQL_STMT* auth_ = nullptr;
    MYSQL_STMT* super_ = nullptr;
    MYSQL_STMT* acl_ = nullptr;
};

}  // namespace

std::shared_ptr<BackendAuth> make_mysql_auth(const SqlConfig& config,
                                             std::shared_ptr<BackendStats> stats) {
    auto cfg = std::make_shared<const SqlConfig>(config);
    return std::make_shared<BackendAuth>(
            "emq_auth_mysql", with_cache_letters(*cfg),
            [cfg]() { return MysqlConnection::open(*cfg); }, std::move(stats));
}

}  // namespace mqttd::broker::auth
