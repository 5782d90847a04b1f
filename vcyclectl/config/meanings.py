"""What each config key means, for keys whose field carries no `#:` comment or `doc` metadata
(`config.reference` prefers those). Keyed by `Dataclass.field`; a key missing here still
appears in docs/config.md, with an empty meaning. New keys: document them at the field."""

MEANINGS: dict[str, str] = {
    # top level
    "_TopLevel.state_dir": "the shared state directory: every host running reconcile mounts "
                           "the same one (docs/state.md); `--state-dir` overrides it",
    "_TopLevel.feedback_url": "the public URL of `vcyclectl serve`, where VMs fetch MJF and "
                              "send heartbeats and shutdown messages; required on real clouds "
                              "when a machinetype checks heartbeats",
    "_TopLevel.joboutputs_keep_seconds": "how long a finished machine's joboutputs are kept",
    "_TopLevel.max_clock_skew_seconds": "beyond this disagreement between this host's clock "
                                        "and the state directory's filesystem, time-based "
                                        "deletions are withheld (docs/state.md)",
    "_TopLevel.metrics_textfile": "write Prometheus metrics to this file after each pass; "
                                  "`{host}` is this host's name (docs/metrics.md)",
    "_TopLevel.vacmon_hostport": "VacMon collectors to send machine status to (UDP)",
    "_TopLevel.journal_max_bytes": "`finished.jsonl` and `events.jsonl` are rotated past this "
                                   "size (docs/state.md)",
    "_TopLevel.journal_keep": "rotated journal copies kept",
    "_PolicySettings.communities": "groups of machinetypes sharing one priority "
                                   "(docs/policy.md)",
    "_PolicySettings.budgets": "money for spaces between two dates (docs/policy.md)",
    "_PolicySettings.campaigns": "dated priority raises for a community (docs/policy.md)",
    # policy
    "Community.machinetypes": "`SPACE/MACHINETYPE`, or `MACHINETYPE` in every space",
    "Community.priority": "higher takes capacity first",
    "Community.target_share": "divides capacity among communities of equal priority",
    "Community.backfill": "takes only what priority communities leave",
    "Community.make_room": "how a backfill machine makes room for priority work",
    "Budget.amount": "the money available in the window",
    "Budget.start": "first day (or instant) of the window",
    "Budget.end": "last day (inclusive) or instant of the window",
    "Budget.spaces": "the spaces this budget pays for (each space in one budget only)",
    "Budget.currency": "ISO 4217 code, for display",
    "Budget.space_shares": "each space's slice of the amount (default: by processors_limit)",
    "Budget.reserve_margin_seconds": "added to max_wallclock_seconds when reserving a "
                                     "machine's cost",
    "Campaign.name": "its name in status and the schedule (default COMMUNITY-START)",
    "Campaign.community": "the community whose priority is raised",
    "Campaign.start": "when the raise starts",
    "Campaign.end": "when it ends (a bare date: the end of that day)",
    "Campaign.processors": "processors (over the community's spaces) the raise covers",
    "Campaign.share": "or: the share of each space's processors_limit it covers",
    "Campaign.priority": "the raised priority (default: above every community)",
    # machinetype
    "Machinetype.image": "image name or id",
    "Machinetype.flavors": "flavors to try in order; the first that fits min/max_processors "
                           "and the room left wins",
    "Machinetype.min_processors": "smallest machine, in processors",
    "Machinetype.max_processors": "largest machine, in processors",
    "Machinetype.processors_limit": "processors of this machinetype in any state; unset: only "
                                    "the space's limit",
    "Machinetype.max_starting_processors": "processors of machines not yet running; ramps up "
                                           "gently",
    "Machinetype.target_share": "relative share of the space, weighted by hs06_per_processor",
    "Machinetype.hs06_per_processor": "HEPSPEC06 per processor, for shares and accounting",
    "Machinetype.user_data": "user_data template with Vac/Vcycle `##user_data_...##` "
                             "substitutions (a `#cloud-config` template is parsed by "
                             "`config check`)",
    "Machinetype.user_data_options": "values for `##user_data_option_X##`; names that look "
                                     "secret are redacted by `config show`",
    "Machinetype.user_data_files": "`##user_data_option_X##` values read from files (secrets)",
    "Machinetype.heartbeat_file": "the joboutputs file a running VM refreshes",
    "Machinetype.heartbeat_seconds": "a running machine whose heartbeat is older than this "
                                     "(after fizzle_seconds) is deleted",
    "Machinetype.backoff_seconds": "after an abort (codes 300-699, a failure, a fizzle) no new "
                                   "machines of this machinetype for this long",
    "Machinetype.fizzle_seconds": "a machine that stops this soon after starting, without a "
                                  "shutdown message, counts as an abort",
    "Machinetype.max_wallclock_seconds": "machines older than this are deleted "
                                         "(`700 Exceeded max_wallclock_seconds`)",
    "Machinetype.drain_grace_seconds": "MJF shutdowntime = drain time + this; deleted after it",
    "Machinetype.accounting_vo": "APEL VO of this machinetype's jobs",
    "AccountingSettings.gocdb_sitename": "the GOCDB site name; accounting is on where set",
    "AccountingSettings.apel_outgoing_dir": "the dirq queue `ssmsend` reads (default "
                                            "STATE_DIR/apel-outgoing)",
    "AccountingSettings.messages": "which APEL messages to publish",
    # space
    "SpaceSettings.cloud": "which cloud this space is on; its block of that name configures it",
    "SpaceSettings.processors_limit": "processors of all machines of this space, in any state",
    "SpaceSettings.max_starting_processors": "processors of machines not yet running, over the "
                                             "whole space",
    "SpaceSettings.max_creates_per_pass": "safety bound: creations per pass",
    "SpaceSettings.max_deletes_per_pass": "safety bound: deletions per pass",
    "SpaceSettings.concurrency": "cloud calls at once",
    "SpaceSettings.create_timeout_seconds": "a machine still starting after this is ended "
                                            "(`700 Failed to start`)",
    "SpaceSettings.intent_timeout_seconds": "a recorded create the cloud never showed is "
                                            "forgotten after this",
    # local
    "LocalOptions.processors": "the simulated tenancy's quota; beyond it a create raises "
                               "QuotaExceeded",
    "LocalOptions.processors_per_machine": "machine size when no flavors are given",
    "LocalOptions.flavors": "simulated flavors",
    "LocalOptions.boot_seconds": "starting → running",
    "LocalOptions.job_seconds": "running → stops itself with `200 Intended work completed ok`",
    "LocalOptions.no_work_probability": "chance a machine stops soon after boot with `300 No "
                                        "more work available from task queue`",
    "LocalOptions.failure_probability": "chance a machine goes to failed instead of running",
    "LocalOptions.api_error_probability": "chance any list/create/delete call raises a "
                                          "transient cloud error",
    "LocalOptions.heartbeat": "running machines refresh their heartbeat",
    "LocalOptions.seed": "varies the simulated machines' random draws",
    "LocalFlavor.name": "the flavor's name, as machinetypes' `flavors:` give it",
    "LocalFlavor.processors": "processors of this flavor",
    "LocalFlavor.memory_mb": "memory of this flavor",
    "LocalFlavor.price_per_hour": "price, for budgets",
    "LocalFlavor.spot": "simulated spot capacity",
    # openstack
    "OpenStackOptions.cloud": "an entry of clouds.yaml (instead of inline authentication)",
    "OpenStackOptions.auth_url": "Keystone URL, for inline authentication",
    "OpenStackOptions.region": "region name",
    "OpenStackOptions.application_credential_id": "application credential (preferred)",
    "OpenStackOptions.application_credential_secret": "its secret",
    "OpenStackOptions.application_credential_secret_file": "or a file holding the secret",
    "OpenStackOptions.username": "password authentication: user",
    "OpenStackOptions.password": "password authentication: password",
    "OpenStackOptions.password_file": "or a file holding the password",
    "OpenStackOptions.project_name": "project, by name",
    "OpenStackOptions.project_id": "project, by id",
    "OpenStackOptions.user_domain_name": "Keystone domain of the user",
    "OpenStackOptions.project_domain_name": "Keystone domain of the project",
    "OpenStackOptions.cacert": "CA bundle to verify the cloud's TLS certificates",
    "OpenStackOptions.verify": "verify TLS certificates",
    "OpenStackOptions.security_groups": "security groups of new servers",
    "OpenStackOptions.key_name": "SSH key pair of new servers",
    # ec2
    "Ec2Options.region": "AWS region",
    "Ec2Options.profile": "AWS profile (shared credentials file); or the environment, or "
                          "the host's instance role",
    "Ec2Options.endpoint_url": "an EC2-compatible endpoint instead of AWS's",
    "Ec2Options.access_key_id": "static access key (prefer profile or an instance role)",
    "Ec2Options.secret_access_key": "its secret",
    "Ec2Options.session_token": "temporary credentials' session token",
    "Ec2Options.subnets": "subnets machines are spread over",
    "Ec2Options.security_group_ids": "security groups of new instances",
    "Ec2Options.iam_instance_profile": "instance profile (name or ARN) of new instances",
    "Ec2Options.key_name": "SSH key pair of new instances",
    "Ec2Options.image": "AMI id, or a name pattern (then image_owners is required)",
    "Ec2Options.image_owners": "accounts whose AMIs an image name may match",
    "Ec2Options.instance_types": "instance types this space may use",
    "Ec2Options.spot": "request spot instances",
    "Ec2Options.max_price": "highest spot price per hour",
    "Ec2Options.price_per_hour": "per instance type, for budgets",
    "Ec2Options.tags": "extra tags; vcyclectl's own cannot be overridden",
    "Ec2Options.retry_mode": "botocore retry mode",
    "Ec2Options.max_attempts": "botocore attempts per call",
    "Ec2Options.timeout_seconds": "seconds before one API call is abandoned",
    # gce
    "GceOptions.project": "GCE project id",
    "GceOptions.zones": "zones machines are spread over",
    "GceOptions.machine_types": "machine types this space may use",
    "GceOptions.image": "image (URL or family path)",
    "GceOptions.network": "VPC network",
    "GceOptions.subnetwork": "subnetwork",
    "GceOptions.external_ip": "give machines an external IP",
    "GceOptions.network_tags": "network tags (firewall rules)",
    "GceOptions.service_account": "service account of new instances",
    "GceOptions.scopes": "OAuth scopes of that service account",
    "GceOptions.labels": "extra labels; vcyclectl's own cannot be overridden",
    "GceOptions.disk_size_gb": "boot disk size",
    "GceOptions.disk_type": "boot disk type",
    "GceOptions.provisioning_model": "`SPOT` for spot capacity",
    "GceOptions.instance_termination_action": "what GCE does to a pre-empted spot instance",
    "GceOptions.price_per_hour": "per machine type, for budgets",
    "GceOptions.credentials": "`anonymous` only for test servers and private endpoints",
    "GceOptions.credentials_file": "service-account key file (else Application Default "
                                   "Credentials)",
    "GceOptions.api_endpoint": "a Compute API endpoint instead of Google's",
    "GceOptions.page_size": "instances asked for per page of the listing",
    "GceOptions.operation_timeout_seconds": "seconds to wait for a zone operation",
    "GceOptions.request_timeout_seconds": "seconds before one API call is abandoned",
    "GceOptions.retry_seconds": "total seconds of retries of transient errors per call",
}
