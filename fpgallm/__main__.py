from fpgallm.cli import main

raise SystemExit(main())
