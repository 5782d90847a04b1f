ClusterId = 41
ProcId = 0
Owner = "alice"
User = "alice@vmcondor.example.org"
JobStatus = 1
RequestCpus = 1
RequestMemory = 2048
QDate = 1767225600
EnteredCurrentStatus = 1767225600
Cmd = "/var/lib/condor/spool/41/0/cluster41.proc0.subproc0/run.sh"
JobBatchName = "scan"
Requirements = (TARGET.VMCondor =?= true) && (TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && (TARGET.Disk >= RequestDisk) && (TARGET.Memory >= RequestMemory) && (TARGET.Cpus >= RequestCpus) && (TARGET.HasFileTransfer)

ClusterId = 42
ProcId = 0
Owner = "alice"
User = "alice@vmcondor.example.org"
JobStatus = 2
RequestCpus = 4
RequestMemory = 8192
QDate = 1767225700
EnteredCurrentStatus = 1767226000
Cmd = "/var/lib/condor/spool/42/0/cluster42.proc0.subproc0/fit.py"
RemoteHost = "slot1_1@vcyclectl-cloud-b-example-org-vmcondor-c1d2e3f4g5"

ClusterId = 43
ProcId = 0
Owner = "alice"
User = "alice@vmcondor.example.org"
JobStatus = 5
RequestCpus = 1
RequestMemory = 2048
QDate = 1767225800
EnteredCurrentStatus = 1767225900
Cmd = "/var/lib/condor/spool/43/0/cluster43.proc0.subproc0/missing.sh"
HoldReason = "Error from slot1_2@vcyclectl-cloud-c-example-org-vmcondor-h6i7j8k9l0: Failed to execute"

ClusterId = 50
ProcId = 0
Owner = "bob"
User = "bob@vmcondor.example.org"
JobStatus = 1
RequestCpus = 2
RequestMemory = 4096
QDate = 1767226100
EnteredCurrentStatus = 1767226100
Cmd = "/var/lib/condor/spool/50/0/cluster50.proc0.subproc0/sim"
