from ssl_bench.cli import main

raise SystemExit(main())
