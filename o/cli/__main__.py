from o.cli import main

raise SystemExit(main())
