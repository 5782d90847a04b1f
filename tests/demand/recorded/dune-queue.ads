ClusterId = 7001
ProcId = 0
Owner = "dunepro"
AcctGroup = "group_dune.prod"
JobStatus = 1
RequestCpus = 8
RequestMemory = 16000

ClusterId = 7001
ProcId = 1
Owner = "dunepro"
AcctGroup = "group_dune.prod"
JobStatus = 1
RequestCpus = 8
RequestMemory = 16000

ClusterId = 7002
ProcId = 0
Owner = "dunepro"
AcctGroup = "group_dune.prod"
JobStatus = 1
RequestCpus = ifThenElse(isUndefined(MachineCpus), 4, MachineCpus)
RequestMemory = 8000

ClusterId = 7003
ProcId = 0
Owner = "dunepro"
AcctGroup = "group_dune.prod"
JobStatus = 2
RequestCpus = 8
RequestMemory = 16000
RemoteHost = "slot1_1@glidein_12345@cloud-worker-17.example.org"

ClusterId = 7004
ProcId = 0
Owner = "dunepro"
AcctGroup = "group_dune.prod"
JobStatus = 5
RequestCpus = 8
HoldReason = "Error from slot1_3@glidein_4242@cloud-worker-3.example.org: Failed to execute"

ClusterId = 7005
ProcId = 0
Owner = "dunepro"
AcctGroup = "group_dune.prod"
JobStatus = 4
RequestCpus = 8

ClusterId = 8100
ProcId = 0
Owner = "lsstsvc"
AcctGroup = "group_lsst"
JobStatus = 1
RequestCpus = 1
