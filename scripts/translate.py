from cyclegan_tf.cli.translate import main

raise SystemExit(main())
