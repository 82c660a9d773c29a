from cyclegan_tf.cli.import_torch import main

raise SystemExit(main())
