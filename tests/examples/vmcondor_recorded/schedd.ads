MyType = "Scheduler"
Name = "vmcondor@cm.vmcondor.example.org"
Machine = "vcyclectl-cm-cloud-a-example-org-vmcondor-manager-7q2k9x0m1a"
MyAddress = "<203.0.113.10:9618?addrs=203.0.113.10-9618&alias=cm.vmcondor.example.org&noUDP&sock=schedd_1719_2a4c>"
CondorVersion = "$CondorVersion: 24.0.1 2024-08-15 BuildID: 752103 PackageID: 24.0.1-1 $"
VMCondorAccessPoint = true
VMCondorPool = "vmcondor.example.org"
TotalIdleJobs = 1
TotalRunningJobs = 1
TotalHeldJobs = 1

MyType = "Scheduler"
Name = "login.other.example.org"
Machine = "login.other.example.org"
MyAddress = "<198.51.100.7:9618?addrs=198.51.100.7-9618&noUDP&sock=schedd_88_1f00>"
CondorVersion = "$CondorVersion: 23.0.12 2024-06-13 BuildID: 739441 $"
