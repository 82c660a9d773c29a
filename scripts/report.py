from cyclegan_tf.cli.report import main

raise SystemExit(main())
