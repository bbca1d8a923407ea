from aigciqa.cli import main

raise SystemExit(main())
