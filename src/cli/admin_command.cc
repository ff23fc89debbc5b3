// `cairn admin`: organizations and API keys in the server's database (the data directory's
// meta.db), for operators on the server machine.
//
//   cairn admin org create acme
//   cairn admin key create --org acme --expires 30d --permissions write:snapshots,delete:snapshots
//   cairn admin key revoke <key-id>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cairn/cli/command.h"
#include "cairn/common/time.h"
#include "cairn/common/uuid.h"
#include "cairn/meta/api_key.h"
#include "cairn/meta/sqlite_meta_store.h"

namespace {

using namespace cairn;

Result<std::unique_ptr<meta::SqliteMetaStore>> openStore(const cli::GlobalOptions& options) {
  std::filesystem::path dir = cli::resolvedDataDir(options);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return internalError("cannot create data directory " + dir.string() + ": " + ec.message());
  return meta::SqliteMetaStore::open(dir / "meta.db", RealClock::instance());
}

int report(const Status& s) {
  std::cerr << "cairn admin: " << s.message() << std::endl;
  return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

struct KeyFlags {
  std::string org;
  std::string name;
  std::string expires;
  std::vector<std::string> permissions;
  std::string id;
  std::string org_name;
};

Status orgCreate(const cli::GlobalOptions& options, const std::string& name) {
  CAIRN_ASSIGN_OR_RETURN(auto store, openStore(options));
  meta::Organization org;
  org.name = name;
  CAIRN_ASSIGN_OR_RETURN(meta::Organization created, store->createOrganization(org));
  std::cout << created.id << "\t" << created.name << std::endl;
  return okStatus();
}

Status keyCreate(const cli::GlobalOptions& options, const KeyFlags& flags) {
  CAIRN_ASSIGN_OR_RETURN(auto store, openStore(options));
  Result<meta::Organization> org = store->getOrganizationByName(flags.org);
  if (!org.ok()) {
    if (org.status().code() == StatusCode::kNotFound) {
      return invalidArgument("no organization named \"" + flags.org + "\"");
    }
    return org.status();
  }
  std::vector<std::string> permissions = flags.permissions;
  if (permissions.empty()) {
    permissions = {std::string(meta::kPermissionWriteSnapshots),
                   std::string(meta::kPermissionDeleteSnapshots),
                   std::string(meta::kPermissionWriteSandboxes),
                   std::string(meta::kPermissionDeleteSandboxes)};
  }
  std::optional<SystemTime> expires_at;
  if (!flags.expires.empty()) {
    CAIRN_ASSIGN_OR_RETURN(std::chrono::seconds lifetime, meta::parseKeyLifetime(flags.expires));
    expires_at = RealClock::instance().now() + lifetime;
  }
  std::string name = flags.name.empty() ? "key-" + uuidV4().substr(0, 8) : flags.name;
  CAIRN_ASSIGN_OR_RETURN(meta::IssuedApiKey issued,
                         meta::issueApiKey(*store, org->id, name, permissions, expires_at));
  std::cerr << "key " << issued.record.id << " (" << name << ") for " << org->name
            << "; the key is shown once:" << std::endl;
  std::cout << issued.key << std::endl;
  return okStatus();
}

Status keyRevoke(const cli::GlobalOptions& options, const KeyFlags& flags) {
  CAIRN_ASSIGN_OR_RETURN(auto store, openStore(options));
  CAIRN_ASSIGN_OR_RETURN(std::vector<meta::Organization> orgs, store->listOrganizations());
  for (const meta::Organization& org : orgs) {
    CAIRN_ASSIGN_OR_RETURN(std::vector<meta::ApiKey> keys, store->listApiKeys(org.id));
    for (const meta::ApiKey& key : keys) {
      if (key.id == flags.id) {
        CAIRN_RETURN_IF_ERROR(store->revokeApiKey(org.id, key.id).status());
        std::cout << "revoked " << key.id << " (" << key.name << ") of " << org.name << std::endl;
        return okStatus();
      }
    }
  }
  return notFound("no API key with id " + flags.id);
}

void registerAdmin(CLI::App& command, cli::GlobalOptions& options) {
  auto flags = std::make_shared<KeyFlags>();
  auto* admin = &command;
  admin->require_subcommand(1);
  auto* org = admin->add_subcommand("org", "Organizations");
  org->require_subcommand(1);
  auto* org_create = org->add_subcommand("create", "Create an organization");
  org_create->add_option("NAME", flags->org_name, "Organization name")->required();
  org_create->callback([&options, flags] {
    if (Status s = orgCreate(options, flags->org_name); !s.ok()) cli::setExitCode(report(s));
  });
  auto* key = admin->add_subcommand("key", "API keys");
  key->require_subcommand(1);
  auto* key_create = key->add_subcommand("create", "Create an API key (printed once)");
  key_create->add_option("--org", flags->org, "Organization name")->required();
  key_create->add_option("--name", flags->name, "Key name (unique in the organization)");
  key_create->add_option("--expires", flags->expires, "Lifetime: 30d, 12h, 45m, 2w");
  key_create
      ->add_option("--permissions", flags->permissions,
                   "Comma-separated: write:snapshots,delete:snapshots,write:sandboxes,"
                   "delete:sandboxes,admin")
      ->delimiter(',');
  key_create->callback([&options, flags] {
    if (Status s = keyCreate(options, *flags); !s.ok()) cli::setExitCode(report(s));
  });
  auto* key_revoke = key->add_subcommand("revoke", "Revoke an API key");
  key_revoke->add_option("ID", flags->id, "Key id")->required();
  key_revoke->callback([&options, flags] {
    if (Status s = keyRevoke(options, *flags); !s.ok()) cli::setExitCode(report(s));
  });
}

CAIRN_REGISTER_SUBCOMMAND(110, "admin", "Organizations and API keys (server side)", registerAdmin);

}  // namespace
