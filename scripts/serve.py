from cyclegan_tf.cli.serve import main

raise SystemExit(main())
