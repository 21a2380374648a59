from drip_mcp.cli import main

raise SystemExit(main())
