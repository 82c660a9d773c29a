from cyclegan_tf.cli.export import main

raise SystemExit(main())
