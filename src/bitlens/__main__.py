from bitlens.cli import main

raise SystemExit(main())
