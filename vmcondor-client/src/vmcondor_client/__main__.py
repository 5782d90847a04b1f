from vmcondor_client.cli import main

raise SystemExit(main())
