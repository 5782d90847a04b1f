"""The EC2 driver against a real moto server over HTTP.

Everything goes over HTTP to `moto_server` on a loopback port, except the few behaviours
moto does not have, which each test below names in its docstring:
- moto ignores `ClientToken`, never interrupts spot instances and has no `stopping` /
  `shutting-down` phase: those tests use botocore's Stubber with response shapes of real
  EC2 (field names, codes and messages as EC2 returns them);
- moto has no instance or vCPU limits and always has capacity (its `run_instances` never
  raises them: see moto/ec2/models/instances.py): those tests answer one request at the
  HTTP layer (botocore's `before-send` hook) with EC2's real error document and status, so
  botocore's parser, its retry mode and our translation all run as they would on AWS, and
  every other request still goes to moto.
"""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import ANY, Stubber

from moto_server import (
    DUMMY_AWS_ENV, dummy_aws_credentials, free_port, post, register_image,
)
from vcyclectl.clouds.contract import TAG_MACHINETYPE, TAG_SPACE, TAG_STATE_ID, CloudContext
from vcyclectl.clouds.ec2.driver import Ec2Cloud
from vcyclectl.clouds.ec2.errors import NoCapacity
from vcyclectl.clouds.ec2.requests import client_token
from vcyclectl.clouds.ec2.states import STATE_MAP, machine_state
from vcyclectl.clouds.ec2.options import Ec2Options
from vcyclectl.errors import Fatal, IncompleteListing, QuotaExceeded, Transient
from vcyclectl.core.model import CloudMachine, Flavor, MachineSpec, MachineState

SPACE = "aws.example.org"
STATE_ID = "st-0123456789"
REGION = "us-east-1"


# -- fixtures -------------------------------------------------------------------------

@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    dummy_aws_credentials(monkeypatch)


@pytest.fixture
def ami(ec2: Any) -> str:
    return register_image(ec2, "cernvm4-worker")


@pytest.fixture
def subnets(ec2: Any) -> list[str]:
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    made = []
    for i, zone in enumerate(["us-east-1a", "us-east-1b"]):
        made.append(ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock=f"172.31.{200 + i}.0/24",
                                      AvailabilityZone=zone)["Subnet"]["SubnetId"])
    return made


@pytest.fixture
def make_driver(endpoint: str, ami: str, tmp_path: Path) -> Callable[..., Ec2Cloud]:
    def make(**overrides: Any) -> Ec2Cloud:
        values: dict[str, Any] = {"region": REGION, "endpoint_url": endpoint, "image": ami,
                                  "instance_types": ["m5.large", "m5a.large", "m5.xlarge"],
                                  "max_attempts": 1}
        values.update(overrides)
        per_mt = values.pop("machinetype_options", {})
        return Ec2Cloud(CloudContext(space=SPACE, state_id=STATE_ID, state_dir=tmp_path,
                                     options=Ec2Options(**values),
                                     machinetype_options=per_mt))
    return make


def spec(name: str = "vcyclectl-aws-lhcb-abcde12345", *, flavor: str = "m5.large",
         processors: int = 2, image: str | None = None,
         user_data: str = "#!/bin/sh\necho hello\n",
         metadata: dict[str, str] | None = None) -> MachineSpec:
    return MachineSpec(name=name, space=SPACE, machinetype="lhcb",
                       flavor=Flavor(flavor, processors), image=image, user_data=user_data,
                       state_id=STATE_ID, metadata=metadata or {})


def described(ec2: Any, instance_id: str) -> dict[str, Any]:
    return dict(ec2.describe_instances(InstanceIds=[instance_id])
                ["Reservations"][0]["Instances"][0])


def count_requests(driver: Ec2Cloud, operation: str = "*") -> list[str]:
    """Every HTTP request the driver's client sends (retries included), by operation."""
    sent: list[str] = []

    def record(request: Any, event_name: str, **_: Any) -> None:
        sent.append(event_name.rsplit(".", 1)[-1])
    event = "before-send.ec2" + ("" if operation == "*" else f".{operation}")
    driver.client.meta.events.register(event, record)
    return sent


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def ec2_error(code: str, message: str, status: int) -> AWSResponse:
    """EC2's real error document (Query API XML) at the HTTP layer."""
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>"
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            "<RequestID>5c6a2b2e-1c0a-4c6e-9a3c-3f3f1d2e0a11</RequestID></Response>")
    return AWSResponse("https://ec2.us-east-1.amazonaws.com/", status,
                       {"Content-Type": "text/xml;charset=UTF-8"}, _Body(body.encode()))


def answer_at_http_layer(driver: Ec2Cloud, operation: str, answer: Callable[[dict[str, list[str]]],
                                                              AWSResponse | None]) -> None:
    """Let `answer` reply to `operation` at the HTTP layer; None lets moto reply."""
    from urllib.parse import parse_qs

    def hook(request: Any, **_: Any) -> AWSResponse | None:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        return answer(parse_qs(body))
    driver.client.meta.events.register(f"before-send.ec2.{operation}", hook)


# -- create ---------------------------------------------------------------------------

def test_create_on_demand_with_user_data_and_tags(ec2: Any, make_driver: Callable[..., Ec2Cloud],
                                                  subnets: list[str]) -> None:
    sg = ec2.create_security_group(GroupName="workers", Description="workers")["GroupId"]
    driver = make_driver(subnets=subnets[:1], security_group_ids=[sg], key_name="ops",
                         tags={"project": "lhcb", "cost-centre": "42"})
    machine = driver.create(spec(metadata={"owner": "grid"}))

    assert machine.name == "vcyclectl-aws-lhcb-abcde12345"
    assert machine.state is MachineState.STARTING  # EC2 answers run_instances with "pending"
    assert (machine.space, machine.machinetype, machine.flavor) == (SPACE, "lhcb", "m5.large")
    assert machine.processors == 2 and not machine.spot and not machine.preempted
    instance = described(ec2, machine.id)
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags == {"Name": machine.name, TAG_SPACE: SPACE, TAG_MACHINETYPE: "lhcb",
                    TAG_STATE_ID: STATE_ID, "project": "lhcb", "cost-centre": "42",
                    "owner": "grid"}
    assert instance["SubnetId"] == subnets[0]
    assert instance["KeyName"] == "ops"
    assert [g["GroupId"] for g in instance["SecurityGroups"]] == [sg]
    assert instance.get("InstanceLifecycle") != "spot"
    user_data = ec2.describe_instance_attribute(InstanceId=machine.id, Attribute="userData")
    assert base64.b64decode(user_data["UserData"]["Value"]) == b"#!/bin/sh\necho hello\n"
    behaviour = ec2.describe_instance_attribute(
        InstanceId=machine.id, Attribute="instanceInitiatedShutdownBehavior")
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    volume_tags = {t["Key"]: t["Value"] for v in ec2.describe_volumes()["Volumes"]
                   for t in v.get("Tags", [])}
    assert volume_tags["Name"] == machine.name


def test_create_spot_sends_one_time_terminate_request(ec2: Any,
                                                     make_driver: Callable[..., Ec2Cloud]) -> None:
    driver = make_driver(spot=True, max_price=0.05)
    sent: list[dict[str, list[str]]] = []
    answer_at_http_layer(driver, "RunInstances", lambda query: sent.append(query) or None)

    machine = driver.create(spec())

    assert machine.spot
    assert described(ec2, machine.id)["InstanceLifecycle"] == "spot"
    market = {k: v[0] for k, v in sent[0].items() if k.startswith("InstanceMarketOptions")}
    assert market == {"InstanceMarketOptions.MarketType": "spot",
                      "InstanceMarketOptions.SpotOptions.SpotInstanceType": "one-time",
                      "InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior":
                          "terminate",
                      "InstanceMarketOptions.SpotOptions.MaxPrice": "0.05"}
    [listed] = driver.list_machines()
    assert listed.spot and listed.state is MachineState.RUNNING


def test_image_name_resolved_once_per_pass(ec2: Any, make_driver: Callable[..., Ec2Cloud]) -> None:
    wanted = register_image(ec2, "cernvm4-lhcb-2026.11")
    register_image(ec2, "cernvm4-atlas-2026.11")
    driver = make_driver(image="cernvm4-lhcb-*", image_owners=["self"])
    describe_images = count_requests(driver, "DescribeImages")

    made = [driver.create(spec(f"vcyclectl-aws-lhcb-img{i:07d}")) for i in range(3)]

    assert len(describe_images) == 1
    assert {described(ec2, m.id)["ImageId"] for m in made} == {wanted}


def test_spec_image_overrides_the_block(ec2: Any, make_driver: Callable[..., Ec2Cloud]) -> None:
    other = register_image(ec2, "cernvm4-other")
    machine = make_driver().create(spec(image=other))
    assert described(ec2, machine.id)["ImageId"] == other


def test_subnets_are_spread_least_used_first(ec2: Any, make_driver: Callable[..., Ec2Cloud],
                                            subnets: list[str]) -> None:
    ec2.run_instances(ImageId=make_driver().options.image, MinCount=3, MaxCount=3,
                      InstanceType="m5.large", SubnetId=subnets[0],
                      TagSpecifications=[{"ResourceType": "instance", "Tags": [
                          {"Key": TAG_SPACE, "Value": SPACE},
                          {"Key": TAG_STATE_ID, "Value": STATE_ID}]}])
    driver = make_driver(subnets=subnets)
    assert len(driver.list_machines()) == 3

    made = [driver.create(spec(f"vcyclectl-aws-lhcb-sub{i:07d}")) for i in range(5)]

    placed = [described(ec2, m.id)["SubnetId"] for m in made]
    assert placed.count(subnets[1]) == 4 and placed.count(subnets[0]) == 1


def test_client_token_is_derived_from_the_name(make_driver: Callable[..., Ec2Cloud]) -> None:
    """Stubber: moto does not honour ClientToken, so idempotency on real EC2 is shown with
    its recorded response shape: the same name sends the same token, and EC2 answers the
    repeat with the instance it made first."""
    driver = make_driver()
    name = "vcyclectl-aws-lhcb-tok0000001"
    answer = {"ReservationId": "r-0a1b2c3d4e5f67890", "OwnerId": "123456789012", "Groups": [],
              "Instances": [{
                  "InstanceId": "i-0f1e2d3c4b5a69788", "InstanceType": "m5.large",
                  "ImageId": driver.options.image, "ClientToken": client_token(name, "m5.large"),
                  "State": {"Code": 0, "Name": "pending"},
                  "StateReason": {"Code": "pending", "Message": "pending"},
                  "LaunchTime": dt.datetime(2026, 11, 25, 19, 0, tzinfo=dt.timezone.utc),
                  "Placement": {"AvailabilityZone": "us-east-1c", "Tenancy": "default"},
                  "CpuOptions": {"CoreCount": 1, "ThreadsPerCore": 2},
                  "PrivateIpAddress": "172.31.3.7"}]}
    with Stubber(driver.client) as stub:
        for _ in range(2):
            stub.add_response("run_instances", answer, {
                "ImageId": driver.options.image, "InstanceType": "m5.large", "MinCount": 1,
                "MaxCount": 1, "ClientToken": client_token(name, "m5.large"),
                "UserData": spec().user_data, "InstanceInitiatedShutdownBehavior": "terminate",
                "TagSpecifications": ANY})
        first = driver.create(spec(name))
        again = driver.create(spec(name))
        stub.assert_no_pending_responses()
    assert first.id == again.id == "i-0f1e2d3c4b5a69788"
    assert first.processors == 2 and first.zone == "us-east-1c"
    assert client_token(name, "m5.large") == f"{name}/m5.large"
    long_token = client_token("vcyclectl-" + "a" * 80, "m5.large")
    assert len(long_token) <= 64 and long_token != client_token("vcyclectl-" + "a" * 81,
                                                                "m5.large")


# -- list -----------------------------------------------------------------------------

def test_list_reads_every_page_of_over_1000_instances(ec2: Any, ami: str,
                                                      make_driver: Callable[..., Ec2Cloud]) -> None:
    """1,040 tagged instances in 13 launches of 80, plus neighbours that must not be listed.

    moto pages `describe_instances` by reservation (real EC2 by instance), so a page size
    of 5 gives 3 pages here; the count of HTTP requests must equal the count of pages.
    """
    ours = [{"Key": TAG_SPACE, "Value": SPACE}, {"Key": TAG_STATE_ID, "Value": STATE_ID},
            {"Key": TAG_MACHINETYPE, "Value": "lhcb"}]
    for batch in range(13):
        ec2.run_instances(ImageId=ami, InstanceType="m5.large", MinCount=80, MaxCount=80,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": ours + [
                              {"Key": "Name", "Value": f"vcyclectl-aws-lhcb-batch{batch:05d}"}]}])
    for tags in ([{"Key": TAG_SPACE, "Value": "other.example.org"},
                  {"Key": TAG_STATE_ID, "Value": STATE_ID}],
                 [{"Key": TAG_SPACE, "Value": SPACE}, {"Key": TAG_STATE_ID, "Value": "st-other"}],
                 [{"Key": "Name", "Value": "someone-elses-vm"}]):
        ec2.run_instances(ImageId=ami, InstanceType="m5.large", MinCount=2, MaxCount=2,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
    driver = make_driver()
    driver.page_size = 5
    sent = count_requests(driver)

    machines = driver.list_machines()

    assert len(machines) == 1040 and len({m.id for m in machines}) == 1040
    assert {(m.space, m.machinetype, m.state, m.processors) for m in machines} == {
        (SPACE, "lhcb", MachineState.RUNNING, 2)}
    # moto leaves CpuOptions out, so the driver learns m5.large's size with one extra call
    assert sent.count("DescribeInstances") == 3
    assert sent.count("DescribeInstanceTypes") == 1 and len(sent) == 4


def test_listing_cut_short_is_incomplete(ec2: Any, ami: str,
                                         make_driver: Callable[..., Ec2Cloud]) -> None:
    for _ in range(3):
        ec2.run_instances(ImageId=ami, InstanceType="m5.large", MinCount=1, MaxCount=1,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": [
                              {"Key": TAG_SPACE, "Value": SPACE},
                              {"Key": TAG_STATE_ID, "Value": STATE_ID}]}])
    driver = make_driver()
    driver.page_size = 1
    answer_at_http_layer(driver, "DescribeInstances", lambda query: ec2_error(
        "Unavailable", "The service is unavailable. Please try again shortly.", 503)
        if "NextToken" in query else None)

    with pytest.raises(IncompleteListing):
        driver.list_machines()


# -- states and pre-emption -----------------------------------------------------------

def test_every_documented_native_state_is_mapped(ec2: Any) -> None:
    documented = ec2.meta.service_model.shape_for("InstanceStateName").enum
    assert sorted(documented) == sorted(STATE_MAP)


#: Instance states documented in the EC2 user guide ("Amazon EC2 instance state changes").
DOCUMENTED_STATES = ("pending", "running", "shutting-down", "terminated", "stopping", "stopped")


def test_every_documented_state_is_mapped_through_the_one_lookup() -> None:
    assert set(DOCUMENTED_STATES) == set(STATE_MAP)
    for native in DOCUMENTED_STATES:
        assert machine_state({"State": {"Name": native}}) is STATE_MAP[native]
    assert machine_state({"State": {"Name": "hibernating"}}) is MachineState.UNKNOWN
    assert machine_state({}) is MachineState.UNKNOWN


def test_states_module_imports_no_aws_sdk() -> None:
    code = ("import sys, vcyclectl.clouds.ec2.states; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')); "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_states_over_http(ec2: Any, ami: str, make_driver: Callable[..., Ec2Cloud]) -> None:
    driver = make_driver()
    running = driver.create(spec("vcyclectl-aws-lhcb-run0000001"))
    halted = driver.create(spec("vcyclectl-aws-lhcb-halt000001"))
    ended = driver.create(spec("vcyclectl-aws-lhcb-end0000001"))
    ec2.stop_instances(InstanceIds=[halted.id])  # someone stops it through the API
    driver.delete(ended)

    seen = {m.name: m for m in driver.list_machines()}

    assert seen[running.name].state is MachineState.RUNNING
    assert seen[running.name].started_at is not None and seen[running.name].addresses
    assert seen[halted.name].state is MachineState.STOPPED
    assert seen[halted.name].state_reason == "Client.UserInitiatedShutdown"
    assert seen[halted.name].stopped_at is not None
    assert seen[ended.name].state is MachineState.GONE
    assert seen[ended.name].state_reason == "Client.UserInitiatedShutdown"
    assert not seen[ended.name].preempted
    assert seen[ended.name].raw["State"]["Name"] == "terminated"


def test_who_ended_an_instance_over_http(ec2: Any, ami: str,
                                        make_driver: Callable[..., Ec2Cloud]) -> None:
    """Issue 15: an instance stopped or terminated through the EC2 API by someone else
    (moto, like EC2, says `Client.UserInitiatedShutdown`) is reported as ended through the
    API, and the planner replaces it without putting its machinetype into backoff, though
    it lived far less than fizzle_seconds."""
    from vcyclectl.config import Machinetype, Space
    from vcyclectl.core import rules
    from vcyclectl.core.model import ActionKind
    from vcyclectl.core.planner import Observation, plan
    from vcyclectl.core.records import MachineRecord

    driver = make_driver()
    stopped = driver.create(spec("vcyclectl-aws-lhcb-stop000002"))
    terminated = driver.create(spec("vcyclectl-aws-lhcb-term000002"))
    ec2.stop_instances(InstanceIds=[stopped.id])
    ec2.terminate_instances(InstanceIds=[terminated.id])

    seen = {m.name: m for m in driver.list_machines()}
    for machine in (seen[stopped.name], seen[terminated.name]):
        assert machine.state_reason == "Client.UserInitiatedShutdown"
        assert machine.ended_by == rules.END_API and not machine.preempted
    assert seen[stopped.name].state is MachineState.STOPPED
    assert seen[terminated.name].state is MachineState.GONE

    now = max(m.created_at or 0.0 for m in seen.values()) + 5
    space = Space(name=SPACE, processors_limit=8, machinetypes={
        "lhcb": Machinetype(name="lhcb", fizzle_seconds=3600, backoff_seconds=3600)})
    records = {m.name: MachineRecord(name=m.name, space=SPACE, machinetype="lhcb",
                                     state=MachineState.RUNNING, processors=m.processors,
                                     created_at=m.created_at or now, cloud_id=m.id,
                                     started_at=m.created_at) for m in seen.values()}
    planned = plan(space, Observation(machines=list(seen.values()), records=records,
                                      flavors=driver.flavors()), now, lambda mt: f"new-{mt}")
    ends = [a for a in planned.actions if a.kind in (ActionKind.DELETE, ActionKind.FORGET)]
    assert {a.name for a in ends} == {stopped.name, terminated.name}
    assert not any(a.abort for a in ends) and not planned.aborts
    assert all("someone else through the cloud's API" in a.reason for a in ends)
    assert planned.creates  # replaced, no backoff


def test_end_causes_moto_does_not_make(make_driver: Callable[..., Ec2Cloud]) -> None:
    """Stubber: moto never shuts an instance down from inside, fails a launch or retires
    hardware, so these are the describe_instances shapes real EC2 gives for them."""
    from vcyclectl.core import rules

    listed = _listed_from(make_driver(), [
        {**_recorded_instance("vcyclectl-aws-lhcb-self000001", "terminated", 48,
                              "Client.InstanceInitiatedShutdown"), "InstanceId": "i-01"},
        {**_recorded_instance("vcyclectl-aws-lhcb-cap0000001", "terminated", 48,
                              "Server.InsufficientInstanceCapacity"), "InstanceId": "i-02"},
        {**_recorded_instance("vcyclectl-aws-lhcb-ret0000001", "stopped", 80,
                              "Server.ScheduledStop"), "InstanceId": "i-03"},
        {**_recorded_instance("vcyclectl-aws-lhcb-spot000003", "terminated", 48,
                              "Server.SpotInstanceTermination"), "InstanceId": "i-04"},
        {**_recorded_instance("vcyclectl-aws-lhcb-run0000003", "running", 16, ""),
         "InstanceId": "i-05"},
    ])
    assert [m.ended_by for m in listed] == [rules.END_VM, rules.END_START, rules.END_CLOUD,
                                            None, None]
    assert [m.preempted for m in listed] == [False, False, False, True, False]


def _recorded_instance(name: str, state: str, code: int, reason: str,
                       transition: str = "") -> dict[str, Any]:
    return {"InstanceId": "i-0abc1234def567890", "InstanceType": "m5.large",
            "ImageId": "ami-0123456789abcdef0", "InstanceLifecycle": "spot",
            "SpotInstanceRequestId": "sir-7r9g4x1m",
            "State": {"Code": code, "Name": state},
            "StateReason": {"Code": reason, "Message": f"{reason}: {reason}"},
            "StateTransitionReason": transition,
            "LaunchTime": dt.datetime(2026, 11, 25, 18, 0, tzinfo=dt.timezone.utc),
            "Placement": {"AvailabilityZone": "us-east-1b", "Tenancy": "default"},
            "CpuOptions": {"CoreCount": 1, "ThreadsPerCore": 2},
            "Tags": [{"Key": "Name", "Value": name}, {"Key": TAG_SPACE, "Value": SPACE},
                     {"Key": TAG_STATE_ID, "Value": STATE_ID},
                     {"Key": TAG_MACHINETYPE, "Value": "lhcb"}]}


def _listed_from(driver: Ec2Cloud, instances: list[dict[str, Any]]) -> list[CloudMachine]:
    with Stubber(driver.client) as stub:
        stub.add_response("describe_instances", {"Reservations": [
            {"ReservationId": "r-0123456789abcdef0", "OwnerId": "123456789012",
             "Instances": instances}]})
        return driver.list_machines()


def test_spot_interruption_is_recorded_as_preemption(make_driver: Callable[..., Ec2Cloud]) -> None:
    """Stubber: moto never interrupts spot instances, so this is the describe_instances
    shape real EC2 gives a spot instance it reclaimed (terminated, StateReason
    Server.SpotInstanceTermination)."""
    preempted = _recorded_instance(
        "vcyclectl-aws-lhcb-spot000001", "terminated", 48, "Server.SpotInstanceTermination",
        "Service initiated (2026-11-25 18:42:17 GMT)")
    [machine] = _listed_from(make_driver(), [preempted])
    assert machine.preempted and machine.spot
    assert machine.state is MachineState.GONE
    assert machine.state_reason == "Server.SpotInstanceTermination"
    assert machine.stopped_at == dt.datetime(2026, 11, 25, 18, 42, 17,
                                             tzinfo=dt.timezone.utc).timestamp()
    assert machine.raw["StateReason"]["Code"] == "Server.SpotInstanceTermination"


def test_transitional_states_moto_skips(make_driver: Callable[..., Ec2Cloud]) -> None:
    """Stubber: moto moves pending -> running and stopping -> stopped at once, so the
    in-between states come from real EC2 response shapes."""
    listed = _listed_from(make_driver(), [
        {**_recorded_instance("vcyclectl-aws-lhcb-pend000001", "pending", 0, "pending"),
         "InstanceId": "i-01"},
        {**_recorded_instance("vcyclectl-aws-lhcb-stop000001", "stopping", 64,
                              "Client.InstanceInitiatedShutdown"), "InstanceId": "i-02"},
        {**_recorded_instance("vcyclectl-aws-lhcb-shut000001", "shutting-down", 32,
                              "Client.InstanceInitiatedShutdown"), "InstanceId": "i-03"},
        {**_recorded_instance("vcyclectl-aws-lhcb-odd0000001", "hibernating", 80, ""),
         "InstanceId": "i-04"},
    ])
    assert [m.state for m in listed] == [MachineState.STARTING, MachineState.STOPPED,
                                         MachineState.GONE, MachineState.UNKNOWN]
    assert not any(m.preempted for m in listed)


# -- delete ---------------------------------------------------------------------------

def test_delete_terminates_and_is_idempotent(ec2: Any, make_driver: Callable[..., Ec2Cloud]) -> None:
    driver = make_driver()
    machine = driver.create(spec())
    driver.delete(machine)
    driver.delete(machine)  # already terminated
    assert described(ec2, machine.id)["State"]["Name"] == "terminated"
    never = CloudMachine(id="i-0123456789abcdef0", name="vcyclectl-aws-lhcb-gone000001",
                         space=SPACE, machinetype="lhcb", state=MachineState.RUNNING,
                         processors=2)
    driver.delete(never)  # InvalidInstanceID.NotFound from moto = success


# -- quota, capacity and fallback -----------------------------------------------------

QUOTA_ERRORS = [
    ("InstanceLimitExceeded", "You have requested more instances (21) than your current "
     "instance limit of 20 allows for the specified instance type. Please visit "
     "http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit."),
    ("VcpuLimitExceeded", "You have requested more vCPU capacity than your current vCPU limit "
     "of 32 allows for the instance bucket that the specified instance type belongs to. "
     "Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to "
     "this limit."),
    ("MaxSpotInstanceCountExceeded", "Max spot instance count exceeded"),
]


@pytest.mark.parametrize("code,message", QUOTA_ERRORS)
def test_quota_errors(ec2: Any, make_driver: Callable[..., Ec2Cloud], code: str,
                      message: str) -> None:
    """HTTP-layer answer with EC2's real error (moto has no limits); no fallback on quota."""
    driver = make_driver(spot=code.startswith("MaxSpot"))
    runs = count_requests(driver, "RunInstances")
    answer_at_http_layer(driver, "RunInstances", lambda query: ec2_error(code, message, 400))

    with pytest.raises(QuotaExceeded, match=code):
        driver.create(spec())
    assert len(runs) == 1
    assert ec2.describe_instances()["Reservations"] == []


CAPACITY = ("InsufficientInstanceCapacity",
            "There is no Spot capacity available that matches your request.")


def test_no_capacity_falls_back_to_the_next_type(ec2: Any,
                                                 make_driver: Callable[..., Ec2Cloud]) -> None:
    """HTTP-layer answer with EC2's real capacity error (moto always has capacity): the
    refused type is skipped for the rest of the pass, the next type of the same size is
    made on moto, and a bigger one (m5.xlarge) is never tried."""
    driver = make_driver(spot=True)
    runs: list[str] = []
    answer_at_http_layer(driver, "RunInstances", lambda query: (runs.append(query["InstanceType"][0]), ec2_error(
        *CAPACITY, 500) if query["InstanceType"][0] == "m5.large" else None)[1])

    first = driver.create(spec("vcyclectl-aws-lhcb-fall000001"))
    second = driver.create(spec("vcyclectl-aws-lhcb-fall000002"))

    assert (first.flavor, second.flavor) == ("m5a.large", "m5a.large")
    assert described(ec2, first.id)["InstanceType"] == "m5a.large"
    assert runs == ["m5.large", "m5a.large", "m5a.large"]


def test_no_capacity_anywhere_is_transient(ec2: Any, make_driver: Callable[..., Ec2Cloud]) -> None:
    driver = make_driver()
    answer_at_http_layer(driver, "RunInstances", lambda query: ec2_error(
        "InsufficientInstanceCapacity", "We currently do not have sufficient "
        f"{query['InstanceType'][0]} capacity in the Availability Zone you requested "
        "(us-east-1a). Our system will be working on provisioning additional capacity.", 500))
    with pytest.raises(Transient) as caught:
        driver.create(spec())
    assert isinstance(caught.value, NoCapacity)
    assert not isinstance(caught.value, QuotaExceeded)


def test_throttling_is_retried_then_transient(ec2: Any, make_driver: Callable[..., Ec2Cloud]) -> None:
    driver = make_driver(max_attempts=2)
    runs = count_requests(driver, "RunInstances")
    answer_at_http_layer(driver, "RunInstances", lambda query: ec2_error(
        "RequestLimitExceeded", "Request limit exceeded.", 503))
    with pytest.raises(Transient, match="RequestLimitExceeded"):
        driver.create(spec())
    assert len(runs) == 2  # botocore's standard retry mode tried again


def test_unreachable_endpoint_is_transient(aws_env: None, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    driver = Ec2Cloud(CloudContext(space=SPACE, state_id=STATE_ID, state_dir=tmp_path,
                                   options=Ec2Options(region=REGION, endpoint_url=closed,
                                                      max_attempts=1, timeout_seconds=2)))
    with pytest.raises(Transient):
        driver.create(spec(image="ami-0123456789abcdef0"))
    with pytest.raises(IncompleteListing):
        driver.list_machines()


# -- configuration and credential failures --------------------------------------------

def test_bad_ami_is_fatal_and_names_the_machinetype(ec2: Any,
                                                     make_driver: Callable[..., Ec2Cloud]) -> None:
    with pytest.raises(Fatal, match=r"machinetype lhcb.*ami-0000000000000dead.*`image`"):
        make_driver(image="ami-0000000000000dead").create(spec())


def test_bad_instance_type_is_fatal_and_names_the_machinetype(
        ec2: Any, make_driver: Callable[..., Ec2Cloud]) -> None:
    with pytest.raises(Fatal, match=r"machinetype lhcb.*m5\.huge.*instance_types"):
        make_driver().create(spec(flavor="m5.huge"))


def test_image_name_without_match_is_fatal(ec2: Any, make_driver: Callable[..., Ec2Cloud]) -> None:
    with pytest.raises(Fatal, match="no available AMI named 'no-such-image-\\*'"):
        make_driver(image="no-such-image-*", image_owners=["self"]).create(spec())


def test_rejected_credentials_are_fatal(ec2: Any, endpoint: str,
                                        make_driver: Callable[..., Ec2Cloud]) -> None:
    """moto's own IAM authentication (switched on through /moto-api/reset-auth) rejects
    the unknown access key with AuthFailure, as EC2 does."""
    driver = make_driver()
    post(f"{endpoint}/moto-api/reset-auth", b"0")
    try:
        with pytest.raises(Fatal, match="AuthFailure") as caught:
            driver.list_machines()
        with pytest.raises(Fatal, match="AuthFailure"):
            driver.create(spec())
    finally:
        post(f"{endpoint}/moto-api/reset-auth", b"inf")
    text = str(caught.value)
    assert DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"] not in text
    assert DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"] not in text
    assert "check" in text


def test_missing_credentials_are_fatal(ec2: Any, make_driver: Callable[..., Ec2Cloud],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(Fatal, match="no usable AWS credentials.*profile.*instance role"):
        make_driver().list_machines()


def test_unknown_profile_is_fatal(ec2: Any, make_driver: Callable[..., Ec2Cloud]) -> None:
    with pytest.raises(Fatal, match="profile 'nobody'"):
        make_driver(profile="nobody")


def test_static_keys_from_the_block_are_used(ec2: Any, make_driver: Callable[..., Ec2Cloud],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    driver = make_driver(access_key_id="AKIDEXAMPLE2", secret_access_key="s3cr3t")
    assert driver.list_machines() == []


def test_user_data_over_16k_is_fatal(ec2: Any, make_driver: Callable[..., Ec2Cloud]) -> None:
    with pytest.raises(Fatal, match="user_data is 20000 bytes"):
        make_driver().create(spec(user_data="x" * 20000))


# -- flavors --------------------------------------------------------------------------

def test_flavors_sizes_and_prices_in_configured_order(
        ec2: Any, make_driver: Callable[..., Ec2Cloud]) -> None:
    driver = make_driver(instance_types=["m5.xlarge", "c5.large"],
                         price_per_hour={"m5.xlarge": 0.192, "c5.large": 0.085})
    calls = count_requests(driver)
    flavors = driver.flavors()
    assert driver.flavors() == flavors
    assert flavors == [Flavor("m5.xlarge", 4, 16384, 0.192), Flavor("c5.large", 2, 4096, 0.085)]
    assert calls == ["DescribeInstanceTypes"]  # once per driver instance


def test_spot_flavors_priced_from_spot_history(ec2: Any,
                                               make_driver: Callable[..., Ec2Cloud]) -> None:
    history = ec2.describe_spot_price_history(InstanceTypes=["m5.large"])["SpotPriceHistory"]
    driver = make_driver(spot=True, instance_types=["m5.large"])
    [flavor] = driver.flavors()
    assert flavor.spot and flavor.processors == 2 and flavor.memory_mb == 8192
    assert flavor.price_per_hour == max(float(h["SpotPrice"]) for h in history)


def test_options_problems() -> None:
    assert Ec2Options(image="ami-0123456789abcdef0").problems() == []
    keys = [key for key, _ in Ec2Options(image="cernvm-*", access_key_id="AKID",
                                         tags={"Name": "x"},
                                         instance_types=["a", "a"]).problems()]
    assert keys == ["access_key_id", "image_owners", "instance_types", "tags"]
